#!/bin/sh
# mlc-dump --tensor: a tensor of a tensor cache, dequantized, with statistics
# checked against numpy's own reading of the shards.
. "$(dirname "$0")/lib.sh"

cat >cfg.json <<'JSON'
{"model_type": "llama", "quantization": "q4f16_1",
 "model_config": {"hidden_size": 72, "intermediate_size": 100, "num_attention_heads": 4,
  "num_key_value_heads": 2, "num_hidden_layers": 1, "vocab_size": 512, "head_dim": 18}}
JSON

test_expect_success 'setup: a q4f16_1 cache with K not a multiple of 32' '
	mkmodel --arch llama --hidden 72 --intermediate 100 --heads 4 --kv-heads 2 --layers 1 -o m &&
	mkdir out && cp cfg.json out/mlc-chat-config.json &&
	mlc-quant -q --model m --config cfg.json -o out --stream /dev/null
'

# numpy's statistics of a dequantized q4f16_1 weight read from the shards
numpy_stats () {
	$PYTHON - "$1" "$2" <<-'PY'
	import json, sys
	import numpy as np
	d, base, k = "out", sys.argv[1], int(sys.argv[2])
	tc = json.load(open(d + "/tensor-cache.json"))
	recs = {r["name"]: (s["dataPath"], r) for s in tc["records"] for r in s["records"]}
	def load(name, dt):
	    path, r = recs[name]
	    raw = open(d + "/" + path, "rb").read()[r["byteOffset"]:r["byteOffset"] + r["nbytes"]]
	    return np.frombuffer(raw, dt).reshape(r["shape"])
	q = load(base + ".q_weight", np.uint32)
	s = load(base + ".q_scale", np.float16).astype(np.float32)
	n = q.shape[0]
	vals = ((q[:, :, None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15).reshape(n, -1)[:, :k]
	w = ((vals.astype(np.float32) - 7) * np.repeat(s, 32, axis=1)[:, :k]).astype(np.float16).astype(np.float64)
	print("count: %d" % w.size)
	print("min: %.6g" % w.min())
	print("max: %.6g" % w.max())
	print("mean: %.6g" % w.mean())
	print("zeros: %d" % (w == 0).sum())
	PY
}

test_expect_success 'a quantized weight: shape from the configuration, statistics as numpy' '
	mlc-dump --tensor model.layers.0.mlp.down_proj.weight out >t.txt &&
	test_grep "^scheme: q4f16_1 (int4, group 32, NK layout)" t.txt &&
	test_grep "^shape: \[72, 100\] dequantized$" t.txt &&
	test_grep "^q_weight: \[72, 16\] uint32 (model.layers.0.mlp.down_proj.q_weight in params_shard_0.bin at byte" t.txt &&
	test_grep "^q_scale: \[72, 4\] float16" t.txt &&
	numpy_stats model.layers.0.mlp.down_proj 100 >want.txt &&
	grep -E "^(count|min|max|mean|zeros):" t.txt >got.txt &&
	test_cmp want.txt got.txt &&
	mlc-dump --tensor model.layers.0.mlp.down_proj.q_scale out >t2.txt &&
	test_cmp t.txt t2.txt
'

test_expect_success 'plain tensors, and float32 ones decoded from bfloat16' '
	mlc-dump --tensor model.norm.weight out >n.txt &&
	test_grep "^shape: \[72\] float16" n.txt &&
	test_grep "^count: 72" n.txt &&
	sed -e s/q4f16_1/q0f32/ cfg.json >cfg32.json &&
	mkdir o32 && cp cfg32.json o32/mlc-chat-config.json &&
	mlc-quant -q --model m --config cfg32.json -o o32 --stream /dev/null &&
	mlc-dump --tensor model.norm.weight o32 >n32.txt &&
	test_grep "^shape: \[72\] float32" n32.txt &&
	grep -E "^(min|max):" n.txt >a.txt && grep -E "^(min|max):" n32.txt >b.txt &&
	$PYTHON -c "
import sys
a = [float(l.split()[1]) for l in open(\"a.txt\")]
b = [float(l.split()[1]) for l in open(\"b.txt\")]
assert all(abs(x - y) <= abs(x) / 128 for x, y in zip(a, b)), (a, b)
"
'

test_expect_success 'KN layout, FP8, uncalibrated scales' '
	sed -e s/q4f16_1/q4f16_0/ cfg.json >kn.json && mkdir kn && cp kn.json kn/mlc-chat-config.json &&
	mlc-quant -q --model m --config kn.json -o kn --stream /dev/null &&
	mlc-dump --tensor model.layers.0.mlp.down_proj.weight kn >kn.txt &&
	test_grep "^scheme: q4f16_0 (int4, group 32, KN layout)" kn.txt &&
	grep -E "^(count|min|max|mean|zeros):" kn.txt >kn-stats.txt &&
	test_cmp want.txt kn-stats.txt &&
	sed -e s/q4f16_1/e4m3_e4m3_f16/ cfg.json >e4.json && mkdir e4 && cp e4.json e4/mlc-chat-config.json &&
	mlc-quant -q --model m --config e4.json -o e4 --stream /dev/null &&
	mlc-dump --tensor model.layers.0.self_attn.o_proj.weight e4 >e4.txt &&
	test_grep "^scheme: e4m3_e4m3_f16 (per-tensor float8_e4m3fn, scale " e4.txt &&
	test_grep "^calibration: uncalibrated (NaN placeholder)" e4.txt
'

test_expect_success 'errors: unknown tensor, no scheme, a damaged shard' '
	test_must_fail mlc-dump --tensor nope out 2>err &&
	test_grep "out: no tensor .nope. in tensor-cache.json" err &&
	mkdir noconf && cp out/tensor-cache.json out/params_shard_0.bin noconf/ &&
	test_must_fail mlc-dump --tensor model.layers.0.mlp.down_proj.weight noconf 2>err &&
	test_grep "give --scheme NAME" err &&
	mlc-dump --tensor model.layers.0.mlp.down_proj.weight --scheme q4f16_1 noconf >nc.txt &&
	test_grep "K assumed a multiple of the group size" nc.txt &&
	printf "x" | dd of=noconf/params_shard_0.bin bs=1 seek=100 conv=notrunc 2>/dev/null &&
	test_must_fail mlc-dump --tensor model.norm.weight noconf 2>err &&
	test_grep "params_shard_0.bin: md5 .*, but tensor-cache.json says" err &&
	{ mlc-dump --tensor x 2>err; test $? = 2; }
'

test_done
