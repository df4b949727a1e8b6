#!/bin/sh
# mlc-cfg's settings: each named option and --override, MLC's two-pass
# derivation after an override, a user's own template file, and the
# automatic template choice.
. "$(dirname "$0")/lib.sh"

ST="$FIXTURES/stories260K"
: >empty
mkmodel --arch llama --tokenizer "$ST" -o llama >/dev/null || exit 1
mkmodel --arch mistral --tokenizer "$ST" -o mistral >/dev/null || exit 1
mkmodel --arch qwen3 --tokenizer "$ST" -o qwen3 >/dev/null || exit 1

# cfg MODEL OUT [ARGS...]
cfg () {
	m=$1 o=$2
	shift 2
	mlc-cfg --model "$m" --quantization q4f16_1 -o "$o" "$@" <empty >/dev/null 2>err
}

# check OUT PYTHON-ASSERTIONS: c is the config, mc its model_config
check () {
	$PYTHON -c "
import json, sys
c = json.load(open(sys.argv[1] + '/mlc-chat-config.json'))
mc = c['model_config']
$2
" "$1"
}

test_expect_success 'a smaller context window clamps the prefill chunk' '
	cfg llama o1 --context-window-size 128 &&
	check o1 "assert c[\"context_window_size\"] == mc[\"context_window_size\"] == 128
assert c[\"prefill_chunk_size\"] == mc[\"prefill_chunk_size\"] == 128" &&
	test_grep "prefill_chunk_size 256 is larger than context_window_size 128: clamped to 128" err
'

test_expect_success 'a larger context window keeps the prefill chunk MLC derived from config.json' '
	cfg llama o2 --context-window-size 1024 &&
	check o2 "assert c[\"context_window_size\"] == 1024 and c[\"prefill_chunk_size\"] == 256"
'

test_expect_success 'prefill chunk, batch size, tensor and pipeline parallelism' '
	cfg llama o3 --prefill-chunk-size 64 --max-batch-size 16 --tensor-parallel-shards 2 --pipeline-parallel-stages 2 &&
	check o3 "assert c[\"prefill_chunk_size\"] == mc[\"prefill_chunk_size\"] == 64
assert mc[\"max_batch_size\"] == 16 and \"max_batch_size\" not in c
assert c[\"tensor_parallel_shards\"] == mc[\"tensor_parallel_shards\"] == 2
assert c[\"pipeline_parallel_stages\"] == mc[\"pipeline_parallel_stages\"] == 2"
'

test_expect_success 'sliding window and attention sink (mistral)' '
	cfg mistral o4 --sliding-window-size 64 --attention-sink-size 8 &&
	check o4 "assert c[\"sliding_window_size\"] == mc[\"sliding_window_size\"] == 64
assert c[\"attention_sink_size\"] == mc[\"attention_sink_size\"] == 8
assert c[\"context_window_size\"] == -1 and c[\"prefill_chunk_size\"] == 32" &&
	cfg mistral o5 --sliding-window-size -1 --context-window-size 200 &&
	check o5 "assert c[\"sliding_window_size\"] == -1 and c[\"context_window_size\"] == 200" &&
	test_must_fail cfg mistral o6 --sliding-window-size -1 &&
	test_grep "neither a context window nor a sliding window is set" err
'

test_expect_success 'options for fields an architecture lacks warn and change nothing' '
	cfg llama o7 --sliding-window-size 64 --attention-sink-size 8 &&
	test_grep "warning: cannot override sliding_window_size: llama.s model_config has no such field" err &&
	test_grep "warning: cannot override attention_sink_size" err &&
	check o7 "assert c[\"sliding_window_size\"] == -1 and c[\"attention_sink_size\"] == -1
assert \"sliding_window_size\" not in mc" &&
	cfg qwen3 o8 --pipeline-parallel-stages 2 &&
	test_grep "cannot override pipeline_parallel_stages: qwen3" err &&
	check o8 "assert c[\"pipeline_parallel_stages\"] == 1"
'

test_expect_success '--override sets any model_config field, typed as the field is' '
	cfg llama o9 --override rms_norm_eps=1e-6 --override position_embedding_base=500000 \
		--override tie_word_embeddings=true --override context_window_size=128 \
		--override "rope_scaling={\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64, \"rope_type\": \"llama3\"}" &&
	check o9 "assert mc[\"rms_norm_eps\"] == 1e-06 and isinstance(mc[\"rms_norm_eps\"], float)
assert mc[\"position_embedding_base\"] == 500000 and isinstance(mc[\"position_embedding_base\"], int)
assert mc[\"tie_word_embeddings\"] is True
assert c[\"context_window_size\"] == 128 and c[\"prefill_chunk_size\"] == 128
assert list(mc[\"rope_scaling\"]) == [\"factor\", \"low_freq_factor\", \"high_freq_factor\", \"original_max_position_embeddings\", \"rope_type\"]" &&
	grep -q "\"rms_norm_eps\": 1e-06," o9/mlc-chat-config.json &&
	grep -q "\"position_embedding_base\": 500000," o9/mlc-chat-config.json
'

test_expect_success 'the last setting of a field wins' '
	cfg llama o10 --max-batch-size 4 --override max_batch_size=9 --prefill-chunk-size 32 --override prefill_chunk_size=16 &&
	check o10 "assert mc[\"max_batch_size\"] == 9 and c[\"prefill_chunk_size\"] == 16"
'

test_expect_success 'a template file of the user (MLC issue #1347)' '
	cat >mine.json <<-EOF &&
	{
	  "name": "alpaca",
	  "system_template": "{system_message}\n\n",
	  "system_message": "Below is an instruction that describes a task.",
	  "roles": {"user": "### Instruction:", "assistant": "### Response:"},
	  "seps": ["\n\n", "</s>"],
	  "role_content_sep": "\n",
	  "role_empty_sep": "\n",
	  "stop_str": ["### Instruction:"],
	  "stop_token_ids": [2],
	  "system_prefix_token_ids": [1]
	}
	EOF
	cfg llama o11 --conv-template mine.json &&
	echo "{}" >LM && cfg llama o11b --conv-template LM && rm LM &&
	check o11b "assert c[\"conv_template\"][\"name\"] == \"LM\"" &&
	check o11 "t = c[\"conv_template\"]
assert t[\"name\"] == \"alpaca\" and t[\"messages\"] == [] and t[\"add_role_after_system_message\"] is True
assert t[\"role_templates\"] == {\"user\": \"{user_message}\", \"assistant\": \"{assistant_message}\", \"tool\": \"{tool_message}\"}
assert t[\"strip_reasoning_in_history\"] is False and t[\"function_string\"] == \"\"" &&
	echo "[{\"role\": \"user\", \"content\": \"Add 2 and 2.\"}, {\"role\": \"assistant\", \"content\": \"4\"}, {\"role\": \"user\", \"content\": \"Now 3.\"}]" >conv.json &&
	conv-render o11/mlc-chat-config.json conv.json >got &&
	$PYTHON -c "
import json
got = json.load(open(\"got\"))
want = (\"Below is an instruction that describes a task.\n\n### Instruction:\nAdd 2 and 2.\n\n\"
        \"### Response:\n4</s>### Instruction:\nNow 3.\n\n### Response:\n\")
assert got[\"text\"] == want, got[\"text\"]
assert got[\"prefix_token_ids\"] == [1] and got[\"stop_str\"] == [\"### Instruction:\"]
"
'

# tokenizer_config.json with a chat template
chat_template () {
	$PYTHON -c "
import json, sys
p = sys.argv[1] + '/tokenizer_config.json'
c = json.load(open(p)); c['chat_template'] = sys.argv[2]
json.dump(c, open(p, 'w'), indent=2)
" "$1" "$2"
}

test_expect_success 'the template is chosen from the chat template, and said so on stderr' '
	cp -r llama l3 && chat_template l3 "{{ bos_token }}{% for m in messages %}{{ \"<|start_header_id|>\" + m.role + \"<|end_header_id|>\" }}{% endfor %}" &&
	cfg l3 o12 &&
	test_grep "note\\|conversation template llama-3: its chat template is Llama 3.s" err &&
	check o12 "assert c[\"conv_template\"][\"name\"] == \"llama-3\"" &&
	cp -r llama l3big && chat_template l3big "<|start_header_id|>" &&
	sed -i "s/^{/{\"model_max_length\": 1000000000000000019884624838656,/" l3big/tokenizer_config.json &&
	cfg l3big o17 && check o17 "assert c[\"conv_template\"][\"name\"] == \"llama-3\"" &&
	test_cmp l3big/tokenizer_config.json o17/tokenizer_config.json &&
	cp -r llama bad && echo "{" >bad/tokenizer_config.json &&
	cfg bad o18 && test_grep "warning: .*bad/tokenizer_config.json:2:0: cannot read the chat template" err &&
	cp -r llama smol && chat_template smol "{% for m in messages %}{{ \"<|im_start|>\" + m.role }}{% endfor %}" &&
	cfg smol o13 && check o13 "assert c[\"conv_template\"][\"name\"] == \"chatml\"" &&
	cp -r qwen3 q3 && chat_template q3 "<|im_start|>" &&
	cfg q3 o14 && check o14 "assert c[\"conv_template\"][\"name\"] == \"qwen3\"" &&
	cfg llama o15 -q && ! test -s err &&
	cp -r llama jinja && printf "<|user|>\n{{ m }}</s>" >jinja/chat_template.jinja &&
	cfg jinja o16 && check o16 "assert c[\"conv_template\"][\"name\"] == \"tinyllama_v1_0\""
'

test_expect_success '--list-templates names every built-in template' '
	mlc-cfg --list-templates >list &&
	test_line_count = 17 list &&
	for t in llama-2 llama-3 llama-3_1 chatml chatml_nosystem qwen2 qwen3 mistral_default gemma_instruction phi-3 tinyllama_v1_0 LM; do
		grep -qx -- "$t" list || { echo "missing $t"; return 1; }
	done
'

test_done
