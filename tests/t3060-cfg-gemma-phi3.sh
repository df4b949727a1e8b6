#!/bin/sh
# mlc-cfg for Gemma 2, Gemma 3 (text models and the language part of
# multimodal checkpoints) and Phi-3: golden files checked by hand against
# MLC-LLM's Gemma2Config, Gemma3Config / Gemma3TextConfig and Phi3Config
# (tests/fixtures/cfg/README.md says how), and the behaviours of those
# dataclasses that a rule table would miss.
. "$(dirname "$0")/lib.sh"

GOLD="$FIXTURES/cfg"
ST="$FIXTURES/stories260K"
: >empty

for a in gemma2 gemma3_text phi3; do
	mkmodel --arch $a --tokenizer "$ST" -o m-$a >/dev/null || exit 1
done

# config_with DIR PYTHON: a copy of m-phi3 (or DIR's source) whose
# config.json the Python statement (on c) changes
edit_config () {
	rm -rf "$2" && cp -r "$1" "$2" &&
	$PYTHON - "$2/config.json" "$3" <<-'PY'
	import json, sys
	path, code = sys.argv[1], sys.argv[2]
	c = json.load(open(path))
	exec(code)
	json.dump(c, open(path, "w"), indent=2)
	PY
}

field () {
	$PYTHON -c "import json, sys; c = json.load(open(sys.argv[1])); print(json.dumps($2))" "$1/mlc-chat-config.json"
}

test_expect_success 'gemma2, gemma3_text and phi3 give their golden files' '
	mlc-cfg -q --model m-gemma2 --quantization q4f16_1 --conv-template gemma_instruction -o g2 <empty >/dev/null &&
	test_cmp "$GOLD/gemma2-q4f16_1.json" g2/mlc-chat-config.json &&
	mlc-cfg -q --model m-gemma3_text --quantization q4f16_1 --conv-template gemma3_instruction -o g3 <empty >/dev/null &&
	test_cmp "$GOLD/gemma3_text-q4f16_1.json" g3/mlc-chat-config.json &&
	mlc-cfg -q --model m-phi3 --quantization q4f32_1 --conv-template phi-3 -o p3 <empty >/dev/null 2>&1 &&
	test_cmp "$GOLD/phi3-q4f32_1.json" p3/mlc-chat-config.json
'

# The second __post_init__ clamps the prefill chunk to the overridden
# context (100) and only then puts the sliding window (8) in its place.
test_expect_success 'gemma2: the sliding window is the context; an override of the context is lost, as in MLC' '
	mlc-cfg -q --model m-gemma2 --quantization q0f32 --context-window-size 100 -o g2c <empty >/dev/null &&
	test "$(field g2c "[c[\"context_window_size\"], c[\"prefill_chunk_size\"], c[\"model_config\"][\"context_window_size\"]]")" = "[8, 100, 8]" &&
	edit_config m-gemma2 g2-nosw "del c[\"sliding_window\"]" &&
	test_must_fail mlc-cfg -q --model g2-nosw --quantization q0f32 -o x <empty 2>err &&
	test_grep "field .sliding_window. must be a positive integer (MLC-LLM.s Gemma 2 uses it as the context window)" err
'

test_expect_success 'gemma: activations other than GeLU and attention biases are refused' '
	edit_config m-gemma2 g2-silu "c[\"hidden_activation\"] = None; c[\"hidden_act\"] = \"silu\"" &&
	test_must_fail mlc-cfg -q --model g2-silu --quantization q0f32 -o x <empty 2>err &&
	test_grep "field .hidden_activation.: .silu. is not supported" err &&
	edit_config m-gemma3_text g3-bias "c[\"attention_bias\"] = True" &&
	test_must_fail mlc-cfg -q --model g3-bias --quantization q0f32 -o x <empty 2>err &&
	test_grep "field .attention_bias. must be false for Gemma" err
'

test_expect_success 'gemma3 multimodal checkpoint: the text part, defaults filled, the rest dropped' '
	mkdir mm && cp "$ST"/tokenizer.json "$ST"/tokenizer_config.json mm/ &&
	cat >mm/config.json <<-EOF &&
	{"architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999, "eoi_token_index": 256000,
	 "eos_token_id": [1, 106], "image_token_index": 262144, "initializer_range": 0.02, "mm_tokens_per_image": 256,
	 "model_type": "gemma3",
	 "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
	                 "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
	                 "sliding_window": 1024},
	 "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
	 "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"}}
	EOF
	mlc-cfg -q --model mm --quantization q4f16_1 -o mmo <empty >/dev/null &&
	$PYTHON - <<-PY
	import json
	c = json.load(open("mmo/mlc-chat-config.json"))
	mc = c["model_config"]
	want_text = {"hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34, "attention_bias": False,
	             "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "rms_norm_eps": 1e-06,
	             "hidden_activation": "gelu_pytorch_tanh", "position_embedding_base": 1000000,
	             "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "context_window_size": 8192,
	             "prefill_chunk_size": 8192, "query_pre_attn_scalar": 256, "sliding_window_size": 1024,
	             "kwargs": {"model_type": "gemma3_text", "sliding_window": 1024}}
	assert list(mc["text_config"].items()) == list(want_text.items()), mc["text_config"]
	assert list(mc) == ["text_config", "vocab_size", "tensor_parallel_shards", "max_batch_size",
	                    "context_window_size", "sliding_window_size", "prefill_chunk_size", "is_text_model"], list(mc)
	assert [mc[k] for k in list(mc)[1:]] == [262208, 1, 128, 8192, 1024, 8192, False]
	assert (c["context_window_size"], c["sliding_window_size"], c["prefill_chunk_size"]) == (8192, 1024, 8192)
	assert c["eos_token_id"] == [1, 106]
	PY
'

test_expect_success 'gemma3: --context-window-size overrides the outer field and survives the rebuild' '
	mlc-cfg -q --model m-gemma3_text --quantization q0f32 --context-window-size 4096 -o g3c <empty >/dev/null &&
	test "$(field g3c "[c[\"context_window_size\"], c[\"model_config\"][\"text_config\"][\"context_window_size\"]]")" = "[4096, 8192]"
'

test_expect_success 'phi3: su becomes longrope; no rope_scaling or one without a type is null' '
	edit_config m-phi3 p-su "c[\"rope_scaling\"][\"type\"] = \"su\"" &&
	mlc-cfg -q --model p-su --quantization q0f32 -o pso <empty >/dev/null 2>&1 &&
	test "$(field pso "[c[\"model_config\"][\"rope_scaling\"][k] for k in (\"type\", \"rope_type\", \"max_position_embeddings\", \"original_max_position_embeddings\")]")" = "[\"longrope\", \"longrope\", 64, 16]" &&
	edit_config m-phi3 p-none "c[\"rope_scaling\"] = None" &&
	mlc-cfg -q --model p-none --quantization q0f32 -o pno <empty >/dev/null 2>&1 &&
	test "$(field pno "c[\"model_config\"][\"rope_scaling\"]")" = null &&
	edit_config m-phi3 p-notype "del c[\"rope_scaling\"][\"type\"]; c[\"rope_scaling\"][\"rope_type\"] = \"longrope\"" &&
	mlc-cfg --model p-notype --quantization q0f32 -o pnt <empty >/dev/null 2>err &&
	test "$(field pnt "c[\"model_config\"][\"rope_scaling\"]")" = null &&
	test_grep "rope_scaling has no .type.: ignored, as MLC-LLM does" err &&
	edit_config m-phi3 p-yarn "c[\"rope_scaling\"][\"type\"] = \"yarn\"" &&
	test_must_fail mlc-cfg -q --model p-yarn --quantization q0f32 -o x <empty 2>err &&
	test_grep "rope_scaling.: type yarn is not supported for phi3" err
'

test_expect_success 'phi3: LongRoPE factor lists must have head_dim / 2 numbers' '
	edit_config m-phi3 p-short "c[\"rope_scaling\"][\"long_factor\"] = [1.0, 2.0]" &&
	test_must_fail mlc-cfg -q --model p-short --quantization q0f32 -o x <empty 2>err &&
	test_grep "rope_scaling.: .long_factor. must be a list of head_dim / 2 = 8 numbers" err
'

test_done
