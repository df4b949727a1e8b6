#!/bin/sh
# mlc-emit: the library archive (MLC's metadata, the plan), reproducible
# bytes, naming, and refusal of a module that is not sound.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up stories260K q4f16_1' '
	build_model "$STORIES" q4f16_1 m
'

test_expect_success 'the library is NAME-cpu.tar beside the config, with metadata.json and plan.msgpack' '
	test -f m/m-cpu.tar &&
	tar tf m/m-cpu.tar >entries &&
	printf "metadata.json\nplan.msgpack\n" >want && test_cmp want entries &&
	test "$(record_field m.mp library "r[\"path\"]")" = "$TRASH/m/m-cpu.tar" &&
	test "$(record_field m.mp library "r[\"target\"]")" = cpu &&
	test "$(record_field m.mp library "r[\"config\"]")" = "$TRASH/m/mlc-chat-config.json"
'

test_expect_success 'metadata.json has MLC keys in MLC order and lists every parameter' '
	tar xOf m/m-cpu.tar metadata.json >md.json &&
	$PYTHON - <<-PY
	import json
	md = json.load(open("md.json"))
	keys = list(md)
	mlc = ["model_type", "quantization", "context_window_size", "sliding_window_size", "attention_sink_size",
	       "prefill_chunk_size", "tensor_parallel_shards", "pipeline_parallel_stages", "disaggregation",
	       "kv_state_kind", "max_batch_size", "active_vocab_size", "model_task", "params", "kv_cache", "memory_usage"]
	assert keys[:len(mlc)] == mlc, keys
	assert md["model_type"] == "llama" and md["quantization"] == "q4f16_1" and md["kv_state_kind"] == "kv_cache"
	assert md["kv_cache"] == {"num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 8}
	cache = json.load(open("m/tensor-cache.json"))
	tensors = {t["name"]: t for s in cache["records"] for t in s["records"]}
	assert len(md["params"]) == len(tensors)
	for p in md["params"]:
	    t = tensors[p["name"]]
	    assert p["shape"] == t["shape"] and p["dtype"] == t["dtype"], p
	    assert p["preprocs"] == [] and p["pipeline_stages"] == [0]
	assert set(md["memory_usage"]) == {"embed", "prefill", "decode", "create_kv_cache"}
	assert md["target"] == "cpu" and md["system_lib_prefix"] == "llama_q4f16_1_"
	# written as json.dumps() writes it
	assert open("md.json").read() == json.dumps(md)
	PY
'

test_expect_success 'the archive is reproducible: same bytes, mtime 0, owner 0' '
	mlc-emit -q -o again.tar <m.4-lower.mp >/dev/null &&
	cmp m/m-cpu.tar again.tar &&
	tar tvf again.tar >listing &&
	test_grep "^-rw-r--r-- 0/0 .* 1970-01-01 00:00 plan.msgpack" listing
'

test_expect_success '-o DIR, --system-lib-prefix and --stream' '
	mkdir libs &&
	mlc-emit -q -o libs --system-lib-prefix my_ --stream lib.mp <m.4-lower.mp >/dev/null &&
	test -f libs/m-cpu.tar &&
	test "$(record_field lib.mp library "r[\"metadata\"][\"system_lib_prefix\"]")" = my_ &&
	test "$(mlc-dump lib.mp | wc -l)" = "$(($(mlc-dump m.4-lower.mp | wc -l) + 1))"
'

test_expect_success 'an unknown target is a usage error; no module is an error' '
	test_expect_code () { set +e; "$@"; rc=$?; set -e; test $rc = 2; } &&
	test_expect_code mlc-emit --target metal <m.4-lower.mp 2>err &&
	test_grep "the targets are cpu and vulkan" err &&
	test_must_fail mlc-emit -o x.tar <m.3-quant.mp >/dev/null 2>err &&
	test_grep "no module record on the input" err
'

test_expect_success 'a module whose plan is unsound is refused, naming function and op' '
	mlc-dump --type module m.4-lower.mp >mod.json &&
	$PYTHON - <<-PY
	import json
	m = json.load(open("mod.json"))
	f = [f for f in m["functions"] if f["name"] == "decode"][0]
	f["ops"][2]["in"][0] = len(f["values"]) + 5
	json.dump(m, open("bad.json", "w"))
	m = json.load(open("mod.json"))
	f = [f for f in m["functions"] if f["name"] == "prefill"][0]
	f["arena_bytes"] = 64
	json.dump(m, open("small.json", "w"))
	PY
	mlc-dump --pack bad.json >bad.mp &&
	test_must_fail mlc-emit -o bad.tar <bad.mp 2>err &&
	test_grep "module record: decode: ops\[2\]: field .in. holds an index that names no value" err &&
	mlc-dump --pack small.json >small.mp &&
	test_must_fail mlc-emit -o small.tar <small.mp 2>err &&
	test_grep "does not fit it inside the 64-byte arena" err &&
	! test -e bad.tar && ! test -e small.tar
'

test_done
