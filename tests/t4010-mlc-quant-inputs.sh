#!/bin/sh
# mlc-quant's inputs: safetensors and PyTorch .bin give identical outputs,
# hostile pickles are refused without running anything, and every malformed
# safetensors header is reported with the file, the tensor and the field.
. "$(dirname "$0")/lib.sh"

cat >cfg.json <<'JSON'
{"model_type": "llama", "quantization": "q4f16_1",
 "model_config": {"hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4,
  "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 512, "head_dim": 16}}
JSON

quant () {
	mlc-quant -q --config cfg.json --stream /dev/null "$@"
}

test_expect_success 'pytorch_model.bin gives the same files as model.safetensors' '
	mkmodel --arch llama --dtype bf16 -o st &&
	mkdir bin && cp st/config.json bin/ &&
	cp st/model.safetensors tmp.safetensors && mkdir stcopy && mv tmp.safetensors stcopy/model.safetensors &&
	$PYTHON "$SRC_DIR/tests/helpers/st2bin.py" stcopy && mv stcopy/pytorch_model.bin bin/ &&
	quant --model st -o out.st &&
	quant --model bin -o out.bin &&
	diff -r out.st out.bin
'

test_expect_success 'sharded .bin with an index gives the same files as sharded safetensors' '
	mkmodel --arch qwen2 --dtype f16 --shards 3 -o sq &&
	$PYTHON "$SRC_DIR/tests/helpers/st2bin.py" sq --shards 2 &&
	cat >q2cfg.json <<-JSON &&
	{"model_type": "qwen2", "quantization": "q4f16_1",
	 "model_config": {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4,
	  "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 512, "tie_word_embeddings": true}}
	JSON
	mlc-quant -q --config q2cfg.json --model sq -o o.st --stream /dev/null &&
	mlc-quant -q --config q2cfg.json --model sq --source-format torch -o o.pt --stream pt.mp &&
	mlc-dump --type weights pt.mp | test_grep "\"source_format\":\"torch\"" &&
	diff -r o.st o.pt
'

test_expect_success 'safetensors is preferred when both exist' '
	mlc-quant -q --config q2cfg.json --model sq -o o.auto --stream auto.mp &&
	mlc-dump --type weights auto.mp | test_grep "\"source_format\":\"safetensors\""
'

# craft pickles with Python's own pickle module inside a torch.save-like zip
mkbin () {
	$PYTHON - "$1" "$2" <<-'PY'
	import collections, os, pickle, sys, zipfile
	kind, out = sys.argv[1], sys.argv[2]
	class Evil:
	    def __reduce__(self):
	        return (os.system, ("touch pwned",))
	class EvilEval:
	    def __reduce__(self):
	        return (eval, ("__import__('os').system('touch pwned')",))
	if kind == "system":
	    obj = collections.OrderedDict([("model.norm.weight", Evil())])
	elif kind == "eval":
	    obj = {"x": EvilEval()}
	elif kind == "notdict":
	    obj = [1, 2, 3]
	else:
	    obj = None
	data = pickle.dumps(obj, protocol=2)
	if kind == "truncated":
	    data = pickle.dumps(collections.OrderedDict(a=1), protocol=2)[:-3]
	with zipfile.ZipFile(out, "w") as z:
	    z.writestr("archive/data.pkl", data)
	    z.writestr("archive/version", "3\n")
	PY
}

test_expect_success 'a pickle that would call os.system is refused, naming the global' '
	mkdir evil && cp st/config.json evil/ && mkbin system evil/pytorch_model.bin &&
	test_must_fail quant --model evil -o o.evil 2>err &&
	test_grep "evil/pytorch_model.bin: archive/data.pkl: byte [0-9]*: refusing global .posix.system." err &&
	test ! -e pwned && test ! -e o.evil/tensor-cache.json
'

test_expect_success 'eval is refused too; other malformed pickles are reported' '
	mkbin eval evil/pytorch_model.bin &&
	test_must_fail quant --model evil -o o.evil 2>err &&
	test_grep "refusing global .__builtin__.eval." err && test ! -e pwned &&
	mkbin notdict evil/pytorch_model.bin &&
	test_must_fail quant --model evil -o o.evil 2>err &&
	test_grep "the pickle holds no dict of tensors" err &&
	mkbin truncated evil/pytorch_model.bin &&
	test_must_fail quant --model evil -o o.evil 2>err &&
	test_grep "pickle ends inside an opcode\|STOP\|byte" err &&
	printf "\200\002garbage" >evil/pytorch_model.bin &&
	test_must_fail quant --model evil -o o.evil 2>err &&
	test_grep "legacy (pre-zip) PyTorch checkpoint" err
'

test_expect_success 'torch.save archives with missing, short, strided or foreign storages' '
	$PYTHON - <<-PY &&
	import collections, io, os, torch, zipfile
	def save(path, sd):
	    torch.save(sd, path)
	os.makedirs("tb", exist_ok=True)
	w = torch.arange(12, dtype=torch.float32).reshape(3, 4)
	save("tb/strided.bin", collections.OrderedDict(x=w.t()))
	save("tb/complex.bin", collections.OrderedDict(x=torch.zeros(2, dtype=torch.complex64)))
	save("tb/good.bin", collections.OrderedDict(x=w))
	# drop the storage entry, or shorten it
	for name, change in (("missing", None), ("short", b"\\0" * 8)):
	    src = zipfile.ZipFile("tb/good.bin")
	    with zipfile.ZipFile("tb/%s.bin" % name, "w") as out:
	        for info in src.infolist():
	            data = src.read(info)
	            if info.filename.endswith("/data/0"):
	                if change is None:
	                    continue
	                data = change
	            out.writestr(info, data)
	PY
	mkdir -p one && cp st/config.json one/ &&
	for c in strided complex missing short; do
		cp tb/$c.bin one/pytorch_model.bin &&
		test_must_fail quant --model one -o o.one 2>err.$c || return 1
	done &&
	test_grep "tensor is not contiguous (C order)" err.strided &&
	test_grep "refusing global .torch.ComplexFloatStorage." err.complex &&
	test_grep "tensor .x.: storage data/0 is missing" err.missing &&
	test_grep "tensor .x.: storage data/0 has 8 bytes, but 12 FloatStorage elements were declared" err.short
'

# write a safetensors file with a given header (data: N zero bytes)
mkst () {
	$PYTHON - "$@" <<-'PY'
	import struct, sys
	out, header, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
	open(out, "wb").write(struct.pack("<Q", len(header)) + header + bytes(n))
	PY
}

bad () {
	mkdir -p badm && cp st/config.json badm/ &&
	mkst badm/model.safetensors "$1" "$2" &&
	test_must_fail quant --model badm -o o.bad 2>err &&
	test_grep "$3" err
}

W='"model.norm.weight"'
test_expect_success 'malformed safetensors headers are reported precisely' '
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}" 16 \
		"badm/model.safetensors: header: .*at byte" &&
	bad "{$W:{\"dtype\":\"F33\",\"shape\":[4],\"data_offsets\":[0,16]}}" 16 \
		"tensor .model.norm.weight.: field .dtype.: unknown dtype .F33." &&
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}" 12 \
		"shape and dtype give 16 bytes, but data_offsets span 12" &&
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}" 8 \
		"end 16 is past the end of the data (8 bytes)" &&
	bad "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}" 16 \
		"tensor .b.: data_offsets \[8, 16\] overlap tensor .a." &&
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}" 24 \
		"data_offsets start at 8, leaving a gap after byte 0" &&
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}" 20 \
		"the data section has 20 bytes, but the tensors cover 16" &&
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}" 16 \
		"duplicate object key" &&
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}" 16 \
		"field .shape.: dimensions must be non-negative integers" &&
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"x\":1}}" 16 \
		"tensor .model.norm.weight.: unknown field .x." &&
	bad "[1,2]" 0 "header does not start with .{.: not a safetensors file" &&
	bad "{$W:5}" 0 "tensor .model.norm.weight.: not an object" &&
	printf "\377\377\377\377\377\377\377\177" >badm/model.safetensors &&
	test_must_fail quant --model badm -o o.bad 2>err &&
	test_grep "header length 9223372036854775807 exceeds the 104857600-byte limit" err &&
	printf "\020\0\0\0\0\0\0\0{}" >badm/model.safetensors &&
	test_must_fail quant --model badm -o o.bad 2>err &&
	test_grep "header length 16 is past the end of the file (10 bytes)" err &&
	test ! -e o.bad
'

test_expect_success 'unsupported dtypes, missing tensors and wrong shapes' '
	bad "{$W:{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}" 16 \
		"tensor .model.embed_tokens.weight. (for MLC parameter .model.embed_tokens.weight.) is not in the weights" &&
	bad "{\"model.embed_tokens.weight\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}" 16 \
		"tensor .model.embed_tokens.weight.: dtype I64 is not supported (float32, float16 and bfloat16 are)" &&
	mkmodel --arch llama --hidden 32 --heads 4 --kv-heads 2 -o small &&
	test_must_fail quant --model small -o o.small 2>err &&
	test_grep "parameter .model.embed_tokens.weight. has shape \[512, 32\], but the configuration expects \[vocab_size, 64\]" err
'

test_expect_success 'index files may not point outside the model directory' '
	mkdir idx && cp st/config.json idx/ &&
	echo "{\"weight_map\": {\"model.norm.weight\": \"../st/model.safetensors\"}}" >idx/model.safetensors.index.json &&
	test_must_fail quant --model idx -o o.idx 2>err &&
	test_grep "weight_map: .model.norm.weight.: .../st/model.safetensors. is not a plain relative path" err
'

test_expect_success 'a directory without weights, and --source-format, are explained' '
	mkdir empty &&
	test_must_fail quant --model empty -o o.e 2>err &&
	test_grep "empty: no weights found" err &&
	test_must_fail quant --model st --source-format torch -o o.e 2>err &&
	test_grep "st: no weights found (pytorch_model.bin\[.index.json\])" err &&
	test_must_fail mlc-quant --source-format onnx 2>err &&
	test_grep "not auto, safetensors or torch" err
'

test_done
