#!/bin/sh
# GGUFs of Gemma 2, Gemma 3 and Phi-3 (written as llama.cpp's converter
# writes them: Gemma's norms as 1 + w, Phi-3's fused tensors and LongRoPE
# factors as tensors) give the HuggingFace directory's tensor caches and,
# where the GGUF holds everything config.json said, its mlc-chat-config.json.
#
# What a GGUF cannot carry: Gemma's query_pre_attn_scalar (llama.cpp derives
# it from head_dim; the fixtures here make them equal), Gemma 3's sliding
# window pattern (llama.cpp fixes it at 6) and the extra config.json keys
# that MLC copies into Gemma 3's text_config.kwargs; and the dtype of the
# norms (stored float32), so Gemma's caches match when the checkpoint is
# float32 (from bfloat16, MLC rounds 1 + w to bfloat16 first).
. "$(dirname "$0")/lib.sh"

GW="$PYTHON $SRC_DIR/tests/helpers/gguf_write.py"

# fixture ARCH DTYPE: a HuggingFace directory (query_pre_attn_scalar =
# head_dim) and its GGUF, the directory left without tokenizer.model
fixture () {
	mkmodel --arch $1 --dtype $2 --tokenizer "$FIXTURES/stories260K" -o $1 >/dev/null &&
	$PYTHON - $1/config.json <<-'PY' &&
	import json, sys
	c = json.load(open(sys.argv[1]))
	if "query_pre_attn_scalar" in c:
	    c["query_pre_attn_scalar"] = c["head_dim"]
	json.dump(c, open(sys.argv[1], "w"), indent=2)
	PY
	$GW write $1 $1.gguf --type f32 &&
	rm $1/tokenizer.model
}

build () {
	mlc-fetch -q "$1" | mlc-cfg -q --quantization q4f16_1 -o "$2" 2>/dev/null | mlc-quant -q >/dev/null 2>&1
}

test_expect_success 'gemma2 (float32): same mlc-chat-config.json, byte-identical tensor cache' '
	fixture gemma2 f32 &&
	build gemma2 hf-g2 && build gemma2.gguf gg-g2 &&
	test_cmp hf-g2/mlc-chat-config.json gg-g2/mlc-chat-config.json &&
	cmp hf-g2/tensor-cache.json gg-g2/tensor-cache.json &&
	cmp hf-g2/params_shard_0.bin gg-g2/params_shard_0.bin
'

test_expect_success 'phi3 (bfloat16): LongRoPE factors back from their tensors; same config and cache' '
	fixture phi3 bf16 &&
	build phi3 hf-p3 && build phi3.gguf gg-p3 &&
	test_cmp hf-p3/mlc-chat-config.json gg-p3/mlc-chat-config.json &&
	cmp hf-p3/params_shard_0.bin gg-p3/params_shard_0.bin
'

test_expect_success 'gemma3 (float32): byte-identical cache; model_config equal but for what GGUF drops' '
	fixture gemma3_text f32 &&
	build gemma3_text hf-g3 && build gemma3_text.gguf gg-g3 &&
	cmp hf-g3/params_shard_0.bin gg-g3/params_shard_0.bin &&
	$PYTHON - <<-PY
	import json
	a = json.load(open("hf-g3/mlc-chat-config.json"))
	b = json.load(open("gg-g3/mlc-chat-config.json"))
	ka, kb = a["model_config"]["text_config"].pop("kwargs"), b["model_config"]["text_config"].pop("kwargs")
	assert a == b, [k for k in a if a[k] != b.get(k)]
	assert (ka["sliding_window_pattern"], kb["sliding_window_pattern"]) == (3, 6)
	for k in ("sliding_window", "rope_local_base_freq", "max_position_embeddings"):
	    assert ka[k] == kb[k], k
	PY
'

test_expect_success 'a Q8_0 gemma2 GGUF: the same mlc-chat-config.json' '
	$GW write gemma2 gemma2-q8.gguf --type q8_0 --tokenizer-json &&
	mlc-fetch -q gemma2-q8.gguf | mlc-cfg -q --quantization q4f16_1 -o gq8 >/dev/null 2>&1 &&
	test_cmp hf-g2/mlc-chat-config.json gq8/mlc-chat-config.json
'

test_done
