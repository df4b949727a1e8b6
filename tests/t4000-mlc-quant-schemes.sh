#!/bin/sh
# mlc-quant against an independent numpy model of MLC's convert_weight
# (tests/helpers/mlc_convert_ref.py): every scheme and architecture, byte for
# byte, including tensor-cache.json and the shard packing.
. "$(dirname "$0")/lib.sh"

REF="$SRC_DIR/tests/helpers/mlc_convert_ref.py"

# mlc-chat-config.json for a model directory (the fields mlc-quant reads,
# under MLC's names)
mkconfig () {
	$PYTHON - "$1" "$2" "$3" <<-'PY'
	import json, sys
	d, q, out = sys.argv[1:4]
	c = json.load(open(d + "/config.json"))
	keys = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
	        "num_hidden_layers", "vocab_size")
	mc = {k: c[k] for k in keys}
	mc["tie_word_embeddings"] = c.get("tie_word_embeddings", False)
	if "head_dim" in c: mc["head_dim"] = c["head_dim"]
	if c["model_type"] == "qwen3": mc["attention_bias"] = c.get("attention_bias", False)
	cfg = {"version": "0.1.0", "model_type": c["model_type"], "quantization": q, "model_config": mc}
	json.dump(cfg, open(out, "w"), indent=2)
	PY
}

# same MODEL SCHEME: mlc-quant and the model agree on every byte
same () {
	rm -rf out.$2 ref.$2
	mkconfig "$1" "$2" "cfg.$2.json" &&
	mlc-quant -q --model "$1" --config "cfg.$2.json" -o out.$2 --stream /dev/null &&
	$PYTHON "$REF" "$1" "cfg.$2.json" ref.$2 &&
	diff -r out.$2 ref.$2
}

SCHEMES="q0f16 q0bf16 q0f32 q3f16_0 q3f16_1 q4f16_0 q4f16_1 q4bf16_0 q4bf16_1 q4f32_1 q4f16_2 e4m3_e4m3_f16 e5m2_e5m2_f16"

test_expect_success 'every scheme on a bf16 llama matches the model byte for byte' '
	mkmodel --arch llama --dtype bf16 --inv-freq -o llama &&
	for q in $SCHEMES; do same llama $q || { echo "scheme $q differs"; return 1; }; done
'

test_expect_success 'mistral, qwen2 and qwen3 in f32, f16 and bf16 match too' '
	for a in mistral qwen2 qwen3; do
		for d in f32 f16 bf16; do
			rm -rf $a.$d && mkmodel --arch $a --dtype $d -o $a.$d || return 1
		done
		same $a.f32 q4f16_1 && same $a.f16 q4bf16_1 && same $a.bf16 q0f32 &&
		same $a.bf16 e4m3_e4m3_f16 && same $a.f16 q4f16_1 && same $a.bf16 q4f16_1 ||
		{ echo "$a differs"; return 1; }
	done
'

test_expect_success 'K not a multiple of the group size (pads the last group)' '
	mkmodel --arch llama --hidden 72 --intermediate 100 --heads 4 --kv-heads 2 -o odd &&
	same odd q4f16_1 && same odd q3f16_1 && same odd q4f16_0
'

test_expect_success 'the real stories260K model (tied, K=172) matches too' '
	same "$FIXTURES/stories260K" q4f16_1 && same "$FIXTURES/stories260K" q3f16_1 &&
	same "$FIXTURES/stories260K" q0bf16
'

test_expect_success 'names and shapes: qkv and gate_up fused, tied lm_head left out' '
	mkconfig qwen2.bf16 q4f16_1 q.json &&
	mlc-quant -q --model qwen2.bf16 --config q.json -o q2 --stream q2.mp &&
	mlc-dump --type tensor q2.mp >q2.jsonl &&
	test_grep "\"name\":\"model.layers.0.self_attn.c_attn.q_weight\",.*\"shape\":\[256,16\]" q2.jsonl &&
	test_grep "\"name\":\"model.layers.0.self_attn.c_attn.bias\",.*\"dtype\":\"float16\",\"shape\":\[256\]" q2.jsonl &&
	test_grep "\"name\":\"model.layers.1.mlp.gate_up_proj.q_scale\",.*\"shape\":\[512,4\]" q2.jsonl &&
	test_grep "\"source\":\[\"model.layers.0.mlp.gate_proj.weight\",\"model.layers.0.mlp.up_proj.weight\"\]" q2.jsonl &&
	! grep lm_head q2.jsonl &&
	mkconfig llama q4f16_0 kn.json &&
	mlc-quant -q --model llama --config kn.json -o kn --stream kn.mp &&
	mlc-dump --type tensor kn.mp >kn.jsonl &&
	test_grep "\"name\":\"model.layers.0.self_attn.o_proj.q_weight\",.*\"shape\":\[8,64\]" kn.jsonl &&
	test_grep "\"name\":\"model.embed_tokens.q_weight\",.*\"shape\":\[512,8\]" kn.jsonl &&
	! grep inv_freq kn.jsonl
'

test_expect_success 'sharded inputs, big tensors and the 32 MiB shard cap' '
	mkmodel --arch llama --dtype bf16 --vocab 16384 --hidden 1024 --intermediate 1024 \
		--heads 8 --kv-heads 8 --layers 1 --shards 3 -o big &&
	same big q0f16 &&
	$PYTHON - <<-PY
	import json
	j = json.load(open("out.q0f16/tensor-cache.json"))
	sizes = [s["nbytes"] for s in j["records"]]
	# embed and lm_head (32 MiB each) go out of band, each alone in a shard
	assert sizes.count(32 << 20) == 2, sizes
	assert all(n <= 32 << 20 for n in sizes)
	PY
'

test_expect_success 'float32 tensors also give tensor-cache-b16.json' '
	test -f out.q4f32_1/tensor-cache-b16.json &&
	test_grep "\"dtype\": \"bfloat16\"" out.q4f32_1/tensor-cache-b16.json &&
	! test -f out.q4f16_1/tensor-cache-b16.json
'

test_expect_success 'FP8 activation scales are NaN placeholders, marked uncalibrated' '
	mkconfig llama e4m3_e4m3_f16 e4.json &&
	mlc-quant -q --model llama --config e4.json -o e4 --stream e4.mp &&
	mlc-dump --type weights e4.mp >w.json &&
	test_grep "\"calibration\":\"uncalibrated\"" w.json &&
	$PYTHON - <<-PY
	import json, struct
	j = json.load(open("e4/tensor-cache.json"))
	found = 0
	for s in j["records"]:
	    data = open("e4/" + s["dataPath"], "rb").read()
	    for r in s["records"]:
	        if r["name"].endswith("q_calibration_scale"):
	            b = data[r["byteOffset"]:r["byteOffset"] + 2]
	            v = struct.unpack("<f", b"\0\0" + b)[0]
	            assert v != v, r["name"]
	            found += 1
	assert found == 8, found
	PY
	mkconfig llama e5m2_e5m2_f16 e5.json &&
	mlc-quant -q --model llama --config e5.json -o e5 --stream e5.mp &&
	mlc-dump --type weights e5.mp | test_grep "\"calibration\":\"none\""
'

test_done
