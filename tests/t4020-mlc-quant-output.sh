#!/bin/sh
# mlc-quant's outputs: reproducible, independent of threads and SIMD, atomic
# (a killed run leaves the old output), records in a pipeline, usage.
. "$(dirname "$0")/lib.sh"

cat >cfg.json <<'JSON'
{"model_type": "llama", "quantization": "q4f16_1",
 "model_config": {"hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4,
  "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 512, "head_dim": 16}}
JSON
sed -e 's/q4f16_1/q4f32_1/' cfg.json >cfg32.json

test_expect_success 'the same inputs give byte-identical files, whatever the threads' '
	mkmodel --arch llama --dtype bf16 -o m &&
	mlc-quant -q --model m --config cfg.json -o a --stream a.mp &&
	mlc-quant -q -j1 --model m --config cfg.json -o b --stream /dev/null &&
	MLC_NUM_THREADS=3 mlc-quant -q --model m --config cfg.json -o c --stream /dev/null &&
	MLC_QUANT_SIMD=0 mlc-quant -q --model m --config cfg.json -o d --stream /dev/null &&
	diff -r a b && diff -r a c && diff -r a d &&
	mlc-quant -q --model m --config cfg.json -o a --stream a2.mp &&
	diff -r a b
'

test_expect_success 'tensor-cache.json is exactly what json.dump(indent=4) writes' '
	$PYTHON -c "
import json
ours = open(\"a/tensor-cache.json\").read()
assert ours == json.dumps(json.loads(ours), indent=4), \"differs\"
assert not ours.endswith(\"\\n\")
"
'

test_expect_success 'the reader checks what the writer wrote, md5 included' '
	mlc-dump --tensor model.norm.weight a >norm.txt &&
	test_grep "^dtype: float16" norm.txt
'

test_expect_success 'records: one tensor record per tensor, then a weights record' '
	mlc-dump a.mp >rec.jsonl &&
	test_line_count = 26 rec.jsonl &&
	tail -n 1 rec.jsonl >w.json &&
	test_grep "\"type\":\"weights\",\"path\":\"[^\"]*/a/tensor-cache.json\"" w.json &&
	test_grep "\"scheme\":\"q4f16_1\",\"model_type\":\"llama\",\"param_count\":25" w.json &&
	$PYTHON - <<-PY
	import json
	recs = [json.loads(l) for l in open("rec.jsonl")]
	tc = json.load(open("a/tensor-cache.json"))
	flat = {r["name"]: (s["dataPath"], r) for s in tc["records"] for r in s["records"]}
	for t in recs[:-1]:
	    shard, r = flat[t["name"]]
	    assert t["shard"] == shard and t["byte_offset"] == r["byteOffset"] and t["nbytes"] == r["nbytes"]
	    assert t["shape"] == r["shape"] and t["dtype"] == r["dtype"]
	w = recs[-1]
	assert w["param_bytes"] == tc["metadata"]["ParamBytes"]
	assert w["bits_per_param"] == tc["metadata"]["BitsPerParam"]
	PY
'

test_expect_success 'config and model records on stdin drive a run, and pass through' '
	mkdir -p p && cp cfg.json p/mlc-chat-config.json &&
	cat >in.jsonl <<-JSON &&
	{"type":"model","path":"$TRASH/m","files":[]}
	{"type":"config","path":"$TRASH/p/mlc-chat-config.json","dir":"$TRASH/p","config":$(cat cfg.json)}
	JSON
	mlc-dump --pack in.jsonl | mlc-quant -q >out.mp &&
	mlc-dump out.mp >out.jsonl &&
	head -n 2 out.jsonl >head.jsonl && mlc-dump --pack head.jsonl | mlc-dump >head2.jsonl &&
	mlc-dump --pack in.jsonl | mlc-dump >in2.jsonl && test_cmp in2.jsonl head2.jsonl &&
	test_line_count = 28 out.jsonl &&
	diff -r a/ p/ | grep -v mlc-chat-config >extra || true &&
	cmp a/tensor-cache.json p/tensor-cache.json &&
	cmp a/params_shard_0.bin p/params_shard_0.bin
'

test_expect_success 'a killed run leaves the old output intact; the next run cleans up' '
	mkmodel --arch llama --dtype bf16 --vocab 8192 --hidden 1024 --intermediate 1024 \
		--heads 8 --kv-heads 8 --layers 2 -o big &&
	sed -e "s/\"hidden_size\": 64/\"hidden_size\": 1024/; s/\"intermediate_size\": 176/\"intermediate_size\": 1024/" \
	    -e "s/\"num_attention_heads\": 4/\"num_attention_heads\": 8/; s/\"num_key_value_heads\": 2/\"num_key_value_heads\": 8/" \
	    -e "s/\"vocab_size\": 512/\"vocab_size\": 8192/; s/\"head_dim\": 16/\"head_dim\": 128/" cfg.json >bigcfg.json &&
	mlc-quant -q --model big --config bigcfg.json -o kept --stream /dev/null &&
	cp -r kept saved &&
	sed -e s/q4f16_1/q0f32/ bigcfg.json >bigcfg32.json &&
	{ MLC_QUANT_SIMD=0 mlc-quant -q -j1 --model big --config bigcfg32.json -o kept --stream /dev/null & pid=$!; } &&
	i=0 && while ! ls -a kept | grep -q "^\.tensor-cache\.tmp\." && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done &&
	sleep 0.2 && kill -9 $pid && { wait $pid || true; } &&
	ls -a kept | grep -q "^\.tensor-cache\.tmp\." &&
	diff -r -x ".tensor-cache.tmp.*" saved kept &&
	mlc-quant -q --model big --config bigcfg32.json -o kept --stream /dev/null &&
	! ls -a kept | grep -q "\.tmp\." &&
	test -f kept/tensor-cache-b16.json
'

test_expect_success 'a smaller output removes the shards of a larger one' '
	mlc-quant -q --model big --config bigcfg.json -o kept --stream /dev/null &&
	diff -r saved kept
'

test_expect_success 'records go to a FIFO without replacing it' '
	mkfifo fifo &&
	{ cat fifo >fifo.mp & } &&
	mlc-quant -q --model m --config cfg.json -o f --stream fifo &&
	wait && test -p fifo && mlc-dump fifo.mp | test_line_count = 26 /dev/stdin
'

test_expect_success '--quantization overrides the configuration, with a warning' '
	mlc-quant --model m --config cfg.json -Q q0f16 -o ov --stream ov.mp 2>err &&
	test_grep "warning: --quantization q0f16 differs from the configuration.s q4f16_1" err &&
	mlc-dump --type weights ov.mp | test_grep "\"scheme\":\"q0f16\"" &&
	test_grep "\"name\": \"model.layers.0.self_attn.qkv_proj.weight\"" ov/tensor-cache.json
'

test_expect_success 'progress on stderr when asked for, nothing with --quiet' '
	MLC_PROGRESS=always mlc-quant --model m --config cfg.json -o pr --stream /dev/null 2>err &&
	test_grep "converting" err &&
	test_grep "wrote 25 tensors in 1 shards to pr" err &&
	MLC_PROGRESS=always mlc-quant -q --model m --config cfg.json -o pr --stream /dev/null 2>err &&
	test ! -s err
'

test_expect_success 'usage: errors exit 2; --help and --version exit 0' '
	mlc-quant --help | test_grep "Usage: mlc-quant" &&
	mlc-quant --version | test_grep "mlc-quant (mlc-pipe)" &&
	{ mlc-quant --bogus 2>err; test $? = 2; } &&
	{ mlc-quant --config cfg.json 2>err; test $? = 2; } &&
	test_grep "no model: give --model DIR" err &&
	{ mlc-quant --model m 2>err; test $? = 2; } &&
	test_grep "no configuration" err &&
	{ mlc-quant --model m --config cfg.json -j 0 2>err; test $? = 2; }
'

test_expect_success 'configuration errors name the file and field' '
	echo "{\"model_type\": \"llama\", \"quantization\": \"q4f16_1\", \"model_config\": {\"hidden_size\": 64}}" >bad.json &&
	test_must_fail mlc-quant --model m --config bad.json -o x --stream /dev/null 2>err &&
	test_grep "bad.json: model_config: missing field .intermediate_size." err &&
	sed -e s/q4f16_1/q9f9/ cfg.json >q9.json &&
	test_must_fail mlc-quant --model m --config q9.json -o x --stream /dev/null 2>err &&
	test_grep "unknown quantization scheme .q9f9. (q0f16, q0bf16" err &&
	sed -e s/llama/gpt2/ cfg.json >g.json &&
	test_must_fail mlc-quant --model m --config g.json -o x --stream /dev/null 2>err &&
	test_grep "model_type .gpt2. is not supported (llama, mistral, qwen2, qwen3, gemma2, gemma3, gemma3_text, phi3)" err &&
	sed -e "s/\"head_dim\": 16/\"head_dim\": 16, \"tensor_parallel_shards\": 4/" cfg.json >tp.json &&
	test_must_fail mlc-quant --model m --config tp.json -o x --stream /dev/null 2>err &&
	test_grep "down_proj.weight: in_features 176 has 5 groups of 32, which cannot be split over 4 tensor-parallel shards" err &&
	sed -e s/q4f16_1/q4f16_0/ tp.json >tpkn.json &&
	test_must_fail mlc-quant --model m --config tpkn.json -o x --stream /dev/null 2>err &&
	test_grep "q4f16_0 (KN layout) does not support tensor_parallel_shards > 1" err &&
	test ! -e x/tensor-cache.json
'

test_done
