#!/bin/sh
# mlc-emit --target vulkan: the library's layout (MLC's metadata with the
# kernel list, the plan, the launches, one SPIR-V blob per kernel), blobs
# that SPIRV-Tools' own validator accepts at every -O level, reproducible
# bytes, and refusal at load of a library whose kernels were damaged.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up stories260K q4f16_1 for vulkan' '
	build_model "$STORIES" q4f16_1 m &&
	mlc-emit -q --target vulkan <m.4-lower.mp >v.mp
'

test_expect_success 'NAME-vulkan.tar: metadata, plan, launches, then the kernels' '
	test -f m/m-vulkan.tar &&
	tar tf m/m-vulkan.tar >entries &&
	head -n 3 entries >head && printf "metadata.json\nplan.msgpack\nlaunches.msgpack\n" >want && test_cmp want head &&
	test "$(sed -n "4,\$p" entries | grep -c "^kernels/[a-z_]*-[0-9]*\.spv$")" = "$(($(wc -l <entries) - 3))" &&
	test "$(record_field v.mp library "r[\"target\"]")" = vulkan &&
	test "$(record_field v.mp library "r[\"path\"]")" = "$TRASH/m/m-vulkan.tar"
'

test_expect_success 'metadata.json lists every kernel with its size and sha256' '
	mkdir x && (cd x && tar xf ../m/m-vulkan.tar) &&
	$PYTHON - <<-PY
	import hashlib, json, os
	md = json.load(open("x/metadata.json"))
	assert md["target"] == "vulkan" and md["model_type"] == "llama"
	blobs = sorted(f for f in os.listdir("x/kernels"))
	ks = md["kernels"]
	assert sorted(k["file"] for k in ks) == ["kernels/" + b for b in blobs], (ks, blobs)
	for k in ks:
	    data = open("x/" + k["file"], "rb").read()
	    assert k["bytes"] == len(data) and k["sha256"] == hashlib.sha256(data).hexdigest(), k
	    assert k["file"] == "kernels/%s.spv" % k["name"] and k["name"].startswith(k["shader"] + "-")
	assert {k["shader"] for k in ks} >= {"embed", "matmul", "rms_norm", "rope", "attention"}
	PY
'

test_expect_success 'the launches print with mlc-dump and name real kernels and ops' '
	tar xOf m/m-vulkan.tar launches.msgpack >launches.mp &&
	mlc-dump launches.mp >launches.json &&
	$PYTHON - <<-PY
	import json
	lp = json.loads(open("launches.json").read())
	assert lp["type"] == "launches" and lp["version"] == 1
	assert [f["name"] for f in lp["functions"]] == ["embed", "prefill", "decode"]
	n = len(lp["kernels"])
	for f in lp["functions"]:
	    assert all(0 <= l["kernel"] < n for l in f["launches"])
	    assert [l["op"] for l in f["launches"]] == sorted(l["op"] for l in f["launches"])
	    assert all(len(l["groups"]) == 3 for l in f["launches"])
	decode = lp["functions"][2]["launches"]
	assert any("batch" in g for l in decode for g in l["groups"] + l["push"])
	PY
'

for level in 0 1 2 3; do
	test_expect_success "-O$level: every kernel passes spirv-val, and emitting twice gives the same bytes" "
		mlc-emit -q -O$level --target vulkan -o O$level.tar <m.4-lower.mp >/dev/null &&
		mlc-emit -q -O$level --target vulkan -o O$level-again.tar <m.4-lower.mp >/dev/null &&
		cmp O$level.tar O$level-again.tar &&
		rm -rf k$level && mkdir k$level && (cd k$level && tar xf ../O$level.tar) &&
		for f in k$level/kernels/*.spv; do spirv-val --target-env vulkan1.1 \$f || return 1; done
	"
done

test_expect_success '-O0 kernels are the shipped ones, -O1 up are specialized' '
	mlc-dump k0/launches.msgpack >l0.json && mlc-dump k1/launches.msgpack >l1.json &&
	test_grep "\"spec\":\[\[0,64\]" l0.json && ! grep -q "\"spec\":\[\[" l1.json &&
	test "$(ls k0/kernels | wc -l)" -lt "$(ls k2/kernels | wc -l)"
'

# Rewrite one entry of a library with python's tarfile (the tests' own
# hands, independent of libarchive).
replace_entry () { # TAR NAME FILE
	$PYTHON - "$@" <<-PY
	import io, sys, tarfile
	path, name, src = sys.argv[1:]
	old = tarfile.open(path)
	members = [(m, old.extractfile(m).read()) for m in old.getmembers()]
	old.close()
	with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
	    for m, data in members:
	        if m.name == name:
	            data = open(src, "rb").read()
	            m.size = len(data)
	        t.addfile(m, io.BytesIO(data))
	PY
}

test_expect_success 'a corrupted kernel is refused at load, naming it' '
	cp m/m-vulkan.tar bad.tar &&
	kernel=$(tar tf bad.tar | grep "kernels/matmul" | head -n 1) &&
	tar xOf bad.tar "$kernel" >blob &&
	$PYTHON -c "import sys; b = bytearray(open(\"blob\", \"rb\").read()); b[len(b) // 2] ^= 0x40; open(\"blob\", \"wb\").write(b)" &&
	replace_entry bad.tar "$kernel" blob &&
	test_must_fail mlc-check -q --library bad.tar --model m --raw --prompt Once --generate >out 2>err &&
	test_grep "bad.tar: $kernel: sha256 .* the blob is corrupted (likely stage: library)" err
'

test_expect_success 'a kernel whose digest was forged fails validation, naming it' '
	cp m/m-vulkan.tar forged.tar &&
	kernel=$(tar tf forged.tar | grep "kernels/rope" | head -n 1) && name=$(basename "$kernel" .spv) &&
	tar xOf forged.tar "$kernel" >blob &&
	$PYTHON -c "import struct; b = bytearray(open(\"blob\", \"rb\").read()); b[20:24] = struct.pack(\"<I\", 0xffff0011); open(\"blob\", \"wb\").write(b)" &&
	sum=$(sha256sum blob | cut -d" " -f1) &&
	mlc-dump launches.mp | $PYTHON -c "import json, sys; r = json.loads(sys.stdin.read()); [k.update(sha256=\"$sum\") for k in r[\"kernels\"] if k[\"name\"] == \"$name\"]; print(json.dumps(r))" >forged.json &&
	mlc-dump --pack forged.json >forged.mp &&
	replace_entry forged.tar "$kernel" blob && replace_entry forged.tar launches.msgpack forged.mp &&
	test_must_fail mlc-check -q --library forged.tar --model m --raw --prompt Once --generate >out 2>err &&
	test_grep "forged.tar: $kernel: invalid SPIR-V" err
'

test_expect_success 'a cpu library asked to run on vulkan says how to get kernels' '
	test_must_fail mlc-check -q --device vulkan --raw --prompt Once <m.mp >out 2>err &&
	test_grep "m-cpu.tar was built for the cpu target and has no Vulkan kernels (emit it with mlc-emit --target vulkan)" err
'

test_expect_success '--list-devices names lavapipe and the default; a bad --device is a usage error' '
	mlc-check --list-devices >devices &&
	test_grep "^vulkan:0	.*(CPU, Vulkan 1\.[0-9]*\.[0-9]*, .* GiB).*the default" devices &&
	test_expect_code () { set +e; "$@"; rc=$?; set -e; test $rc = 2; } &&
	test_expect_code mlc-check --device gpu <v.mp 2>err &&
	test_grep "\-\-device: cpu, vulkan or vulkan:N" err &&
	test_must_fail mlc-check -q --device vulkan:7 --raw --prompt Once <v.mp >out 2>err &&
	test_grep "vulkan:7: the loader offers 1 device (see mlc-check --list-devices)" err
'

test_expect_success 'mlc-emit -O4 is a usage error' '
	test_expect_code () { set +e; "$@"; rc=$?; set -e; test $rc = 2; } &&
	test_expect_code mlc-emit -O4 --target vulkan <m.4-lower.mp 2>err
'

test_done
