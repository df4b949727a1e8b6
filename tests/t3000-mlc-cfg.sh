#!/bin/sh
# mlc-cfg on the fixture models: golden files, Python's json.dump format,
# tokenizer files, determinism, and the record stream.
. "$(dirname "$0")/lib.sh"

GOLD="$FIXTURES/cfg"
ST="$FIXTURES/stories260K"
# mlc-cfg reads records from a non-terminal stdin: give it an empty stream
: >empty

for a in llama mistral qwen2 qwen3; do
	mkmodel --arch $a --tokenizer "$ST" -o m-$a >/dev/null || exit 1
done

test_expect_success 'stories260K gives the golden mlc-chat-config.json' '
	mlc-cfg --model "$ST" --quantization q4f16_1 -o st <empty >out.mp 2>err &&
	test_cmp "$GOLD/stories260K-q4f16_1.json" st/mlc-chat-config.json &&
	test_grep "conversation template LM: the model has no chat template" err
'

test_expect_success 'each synthetic architecture gives its golden file' '
	mlc-cfg -q --model m-llama --quantization q4f16_1 --conv-template llama-2 -o l <empty >/dev/null &&
	test_cmp "$GOLD/llama-q4f16_1.json" l/mlc-chat-config.json &&
	mlc-cfg -q --model m-mistral --quantization q0f16 --conv-template mistral_default -o m <empty >/dev/null &&
	test_cmp "$GOLD/mistral-q0f16.json" m/mlc-chat-config.json &&
	mlc-cfg -q --model m-qwen2 --quantization q4f16_1 --conv-template qwen2 -o q2 <empty >/dev/null 2>/dev/null &&
	test_cmp "$GOLD/qwen2-q4f16_1.json" q2/mlc-chat-config.json &&
	mlc-cfg -q --model m-qwen3 --quantization q4f32_1 --conv-template qwen3 -o q3 <empty >/dev/null 2>/dev/null &&
	test_cmp "$GOLD/qwen3-q4f32_1.json" q3/mlc-chat-config.json
'

test_expect_success 'the files are what Python json.dump(indent=2) writes, fields in MLC order' '
	$PYTHON - st l m q2 q3 <<-PY
	import json, sys
	order = ["version", "model_type", "quantization", "model_config", "vocab_size", "context_window_size",
	         "sliding_window_size", "prefill_chunk_size", "attention_sink_size", "tensor_parallel_shards",
	         "pipeline_parallel_stages", "active_vocab_size", "temperature", "presence_penalty",
	         "frequency_penalty", "repetition_penalty", "top_p", "tokenizer_files", "tokenizer_info",
	         "conv_template", "pad_token_id", "bos_token_id", "eos_token_id", "model_task", "embedding_metadata"]
	conv = ["name", "system_template", "system_message", "system_prefix_token_ids",
	        "add_role_after_system_message", "roles", "role_templates", "messages", "seps", "role_content_sep",
	        "role_empty_sep", "stop_str", "stop_token_ids", "strip_reasoning_in_history", "function_string",
	        "use_function_calling"]
	fields = {"llama": ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
	                    "rms_norm_eps", "vocab_size", "tie_word_embeddings", "position_embedding_base",
	                    "rope_scaling", "context_window_size", "prefill_chunk_size", "num_key_value_heads",
	                    "head_dim", "tensor_parallel_shards", "pipeline_parallel_stages", "max_batch_size",
	                    "disaggregation"],
	          "mistral": ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
	                      "rms_norm_eps", "vocab_size", "position_embedding_base", "num_key_value_heads",
	                      "head_dim", "context_window_size", "sliding_window_size", "prefill_chunk_size",
	                      "attention_sink_size", "tensor_parallel_shards", "max_batch_size"],
	          "qwen2": ["hidden_act", "hidden_size", "intermediate_size", "num_attention_heads",
	                    "num_hidden_layers", "num_key_value_heads", "rms_norm_eps", "rope_theta", "vocab_size",
	                    "tie_word_embeddings", "context_window_size", "prefill_chunk_size",
	                    "tensor_parallel_shards", "head_dim", "dtype", "max_batch_size"]}
	fields["qwen3"] = fields["qwen2"][:3] + ["attention_bias"] + fields["qwen2"][3:] + ["weight_block_size"]
	for d in sys.argv[1:]:
	    text = open(d + "/mlc-chat-config.json").read()
	    doc = json.loads(text)
	    assert json.dumps(doc, indent=2) == text, d
	    assert list(doc) == order, (d, list(doc))
	    assert list(doc["conv_template"]) == conv, d
	    assert list(doc["model_config"]) == fields[doc["model_type"]], d
	    assert text.isascii() and not text.endswith("\n")
	PY
'

test_expect_success 'tokenizer files are copied unchanged, in the listed order' '
	test_cmp "$ST/tokenizer.model" st/tokenizer.model &&
	test_cmp "$ST/tokenizer.json" st/tokenizer.json &&
	test_cmp "$ST/tokenizer_config.json" st/tokenizer_config.json &&
	! test -e st/special_tokens_map.json &&
	ls -A st | sort >have &&
	printf "%s\n" mlc-chat-config.json tokenizer.json tokenizer.model tokenizer_config.json >want &&
	test_cmp want have
'

test_expect_success 'running again gives byte-identical output' '
	mlc-cfg -q --model "$ST" --quantization q4f16_1 -o st <empty >again.mp &&
	mlc-cfg -q --model "$ST" --quantization q4f16_1 -o st2 <empty >/dev/null &&
	test_cmp "$GOLD/stories260K-q4f16_1.json" st/mlc-chat-config.json &&
	diff -r st st2 &&
	cmp out.mp again.mp
'

test_expect_success 'the config record names the file and holds it inline' '
	mlc-dump out.mp >out.jsonl &&
	test_line_count = 1 out.jsonl &&
	$PYTHON - "$TRASH" <<-PY
	import json, sys
	rec = json.loads(open("out.jsonl").read())
	assert list(rec) == ["type", "path", "dir", "model", "config"], list(rec)
	assert rec["type"] == "config"
	assert rec["dir"] == sys.argv[1] + "/st", rec["dir"]
	assert rec["path"] == rec["dir"] + "/mlc-chat-config.json"
	assert rec["config"] == json.load(open(rec["path"]))
	PY
'

test_expect_success 'a model record on stdin is used, and every record passes through unchanged' '
	printf "%s\n" "{\"type\":\"note\",\"x\":[1,2.5,null]}" \
		"{\"type\":\"model\",\"source\":\"local\",\"kind\":\"hf\",\"path\":\"$ST\",\"files\":[]}" |
		mlc-dump --pack >in.mp &&
	mlc-cfg -q --quantization q4f16_1 -o via-stream <in.mp >piped.mp &&
	test_cmp "$GOLD/stories260K-q4f16_1.json" via-stream/mlc-chat-config.json &&
	head -c $(wc -c <in.mp) piped.mp >prefix.mp &&
	cmp in.mp prefix.mp &&
	mlc-dump piped.mp | sed -e "s/^{\"type\":\"\([a-z]*\)\".*/\1/" >types &&
	printf "%s\n" note model config >want &&
	test_cmp want types
'

test_expect_success '--model wins over the stream; --stream writes the records to a file' '
	mlc-cfg -q --model m-llama --quantization q4f16_1 --conv-template llama-2 -o l2 --stream rec.mp <in.mp >stdout &&
	test_must_fail test -s stdout &&
	test_cmp "$GOLD/llama-q4f16_1.json" l2/mlc-chat-config.json &&
	mlc-dump -t config rec.mp | test_grep "\"model_type\":\"llama\""
'

test_expect_success 'a converted MLC model on the stream is refused' '
	printf "%s\n" "{\"type\":\"model\",\"kind\":\"mlc\",\"path\":\"$TRASH/st\"}" | mlc-dump --pack >mlc.mp &&
	test_must_fail mlc-cfg --quantization q4f16_1 -o x <mlc.mp >/dev/null 2>err &&
	test_grep "already converted MLC model" err &&
	! test -e x
'

test_expect_success 'no model at all is a usage error' '
	mlc-cfg --quantization q4f16_1 -o x <empty >/dev/null 2>err; test $? -eq 2 &&
	test_grep "no model" err
'

test_expect_success '--help and --version' '
	mlc-cfg --help >help &&
	test_grep "^Usage: mlc-cfg" help &&
	for opt in model output quantization conv-template context-window-size sliding-window-size \
		prefill-chunk-size attention-sink-size tensor-parallel-shards pipeline-parallel-stages \
		max-batch-size override stream list-templates quiet; do
		grep -q -- "--$opt" help || { echo "--$opt missing from --help"; return 1; }
		$PYTHON -c "import sys; sys.exit(sys.argv[1].replace(\"-\", \"\\\\-\") not in open(sys.argv[2]).read())" \
			"--$opt" "$SRC_DIR/man/mlc-cfg.1" || { echo "--$opt missing from mlc-cfg.1"; return 1; }
	done &&
	mlc-cfg --version | test_grep "^mlc-cfg (mlc-pipe) "
'

test_expect_success 'no temporary files are left behind' '
	ls -A st l m q2 q3 st2 | grep -c "tmp" >n || true &&
	test "$(cat n)" = 0
'

test_done
