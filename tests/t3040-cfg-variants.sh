#!/bin/sh
# mlc-cfg on the config.json files of real model families (Llama 2, 3, 3.1,
# 3.2, TinyLlama, SmolLM, Mistral v0.1 and v0.3, Qwen2.5, Qwen3), written
# here as their published repositories hold them, each with a tokenizer of
# the real size and special-token ids. The expected values are derived by
# hand from mlc-formats.md §4 and MLC's model dataclasses.
. "$(dirname "$0")/lib.sh"

: >empty

$PYTHON - <<'PY' || exit 1
import json, os

LLAMA3_CHAT = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
               "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim "
               "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
               "{{ content }}{% endfor %}")
LLAMA31_CHAT = "{{- bos_token }}{%- if tools %}Environment: ipython{%- endif %}<|start_header_id|><|eom_id|>"
LLAMA2_CHAT = "{{ bos_token + '[INST] <<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' }}"
ZEPHYR_CHAT = "{% for m in messages %}{{ '<|user|>\n' + m['content'] + eos_token }}{% endfor %}"
CHATML = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}"
MISTRAL_CHAT = "{{ bos_token }}{% for m in messages %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}"
QWEN3_CHAT = CHATML + "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>{% endif %}"

SP_STYLE = {"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                                 {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
            "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                           {"type": "ByteFallback"}, {"type": "Fuse"},
                                                           {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}
METASPACE_STYLE = {"normalizer": None, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first"},
                   "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first"}}
BYTE_LEVEL = {"normalizer": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True}}

def write(name, config, generation, regular, specials, style, chat, sp_model=False):
    """regular: size of the model vocabulary (ids 0..regular-1); specials:
    {content: id} added tokens (ids may repeat vocabulary entries)."""
    os.makedirs(name)
    vocab = {"t%d" % i: i for i in range(regular)}
    added = []
    for content, i in specials.items():
        if i < regular:          # SentencePiece-style: the special is also in the vocabulary
            del vocab["t%d" % i]
            vocab[content] = i
        added.append({"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added}
    tok.update(style)
    tok["model"] = {"type": "BPE", "vocab": vocab, "merges": []}
    json.dump(tok, open(name + "/tokenizer.json", "w"))
    tc = {"add_bos_token": True}
    if chat: tc["chat_template"] = chat
    json.dump(tc, open(name + "/tokenizer_config.json", "w"))
    json.dump(config, open(name + "/config.json", "w"), indent=2)
    if generation is not None: json.dump(generation, open(name + "/generation_config.json", "w"), indent=2)

def llama(**kw):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "initializer_range": 0.02,
         "rms_norm_eps": 1e-05, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
         "pretraining_tp": 1}
    c.update(kw)
    return c

sp3 = {"<unk>": 0, "<s>": 1, "</s>": 2}
l3 = {"<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|eom_id|>": 128008, "<|eot_id|>": 128009}
l3.update({"<|reserved_special_token_%d|>" % i: 128010 + i for i in range(246)})

write("llama2-7b-chat", llama(bos_token_id=1, eos_token_id=2, hidden_size=4096, intermediate_size=11008,
      max_position_embeddings=4096, num_attention_heads=32, num_hidden_layers=32, num_key_value_heads=32,
      rope_scaling=None, vocab_size=32000),
      {"bos_token_id": 1, "do_sample": True, "eos_token_id": 2, "max_length": 4096, "pad_token_id": 0,
       "temperature": 0.6, "top_p": 0.9}, 32000, sp3, SP_STYLE, LLAMA2_CHAT)
write("llama3-8b-instruct", llama(bos_token_id=128000, eos_token_id=128009, hidden_size=4096, intermediate_size=14336,
      max_position_embeddings=8192, num_attention_heads=32, num_hidden_layers=32, num_key_value_heads=8,
      rope_theta=500000.0, vocab_size=128256),
      {"bos_token_id": 128000, "eos_token_id": [128001, 128009], "do_sample": True, "temperature": 0.6,
       "max_length": 4096, "top_p": 0.9}, 128000, l3, BYTE_LEVEL, LLAMA3_CHAT)
rs31 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
        "rope_type": "llama3"}
write("llama31-8b-instruct", llama(bos_token_id=128000, eos_token_id=[128001, 128008, 128009], hidden_size=4096,
      intermediate_size=14336, max_position_embeddings=131072, num_attention_heads=32, num_hidden_layers=32,
      num_key_value_heads=8, rope_scaling=rs31, rope_theta=500000.0, vocab_size=128256, mlp_bias=False,
      attention_bias=False),
      {"bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009], "temperature": 0.6,
       "top_p": 0.9}, 128000, l3, BYTE_LEVEL, LLAMA31_CHAT)
write("llama32-1b-instruct", llama(bos_token_id=128000, eos_token_id=[128001, 128008, 128009], head_dim=64,
      hidden_size=2048, intermediate_size=8192, max_position_embeddings=131072, num_attention_heads=32,
      num_hidden_layers=16, num_key_value_heads=8, rope_scaling=dict(rs31, factor=32.0), rope_theta=500000.0,
      tie_word_embeddings=True, vocab_size=128256),
      {"bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009], "temperature": 0.6,
       "top_p": 0.9}, 128000, l3, BYTE_LEVEL, LLAMA31_CHAT)
write("tinyllama-chat", llama(bos_token_id=1, eos_token_id=2, hidden_size=2048, intermediate_size=5632,
      max_position_embeddings=2048, num_attention_heads=32, num_hidden_layers=22, num_key_value_heads=4,
      rope_theta=10000.0, vocab_size=32000),
      {"bos_token_id": 1, "eos_token_id": 2, "max_length": 2048, "pad_token_id": 0}, 32000, sp3, SP_STYLE, ZEPHYR_CHAT)
write("smollm-135m-instruct", llama(bos_token_id=1, eos_token_id=2, hidden_size=576, intermediate_size=1536,
      max_position_embeddings=2048, num_attention_heads=9, num_hidden_layers=30, num_key_value_heads=3,
      rope_theta=10000.0, tie_word_embeddings=True, vocab_size=49152, pad_token_id=2),
      {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}, 49152,
      {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}, BYTE_LEVEL, CHATML)
mistral = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "bos_token_id": 1, "eos_token_id": 2,
           "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768,
           "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
           "tie_word_embeddings": False}
write("mistral-7b-v01", dict(mistral, rope_theta=10000.0, sliding_window=4096, vocab_size=32000),
      {"bos_token_id": 1, "eos_token_id": 2}, 32000, sp3, SP_STYLE, None)
write("mistral-7b-instruct-v03", dict(mistral, rope_theta=1000000.0, sliding_window=None, vocab_size=32768),
      {"bos_token_id": 1, "eos_token_id": 2}, 32768, sp3, METASPACE_STYLE, MISTRAL_CHAT)
qwen_specials = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
qwen_specials.update({"<|q%d|>" % i: 151646 + i for i in range(19)})
write("qwen25-05b-instruct", {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
      "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896,
      "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
      "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
      "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
      "use_sliding_window": False, "vocab_size": 151936},
      {"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
       "repetition_penalty": 1.1, "temperature": 0.7, "top_p": 0.8, "top_k": 20}, 151643, qwen_specials,
      BYTE_LEVEL, CHATML)
qwen3_specials = dict(qwen_specials)
qwen3_specials.update({"<think>": 151667, "</think>": 151668, "<|q19|>": 151665, "<|q20|>": 151666})
write("qwen3-06b", {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False,
      "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128,
      "hidden_act": "silu", "hidden_size": 1024, "intermediate_size": 3072, "max_position_embeddings": 40960,
      "max_window_layers": 28, "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
      "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
      "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_sliding_window": False, "vocab_size": 151936},
      {"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
       "temperature": 0.6, "top_k": 20, "top_p": 0.95}, 151643, qwen3_specials, BYTE_LEVEL, QWEN3_CHAT)
PY

# expect MODEL PYTHON-ASSERTIONS (c: the config, mc: model_config, t: the template name)
expect () {
	mlc-cfg --model "$1" --quantization q4f16_1 -o "out-$1" <empty >/dev/null 2>"err-$1" &&
	$PYTHON -c "
import json, sys
text = open(sys.argv[1] + '/mlc-chat-config.json').read()
c = json.loads(text)
assert json.dumps(c, indent=2) == text
mc = c['model_config']
t = c['conv_template']['name']
$2
" "out-$1"
}

test_expect_success 'Llama 2 7B chat: no rope_theta gives the integer 10000' '
	expect llama2-7b-chat "
assert mc[\"position_embedding_base\"] == 10000 and type(mc[\"position_embedding_base\"]) is int
assert mc[\"rope_scaling\"] is None and mc[\"num_key_value_heads\"] == 32 and mc[\"head_dim\"] == 128
assert c[\"context_window_size\"] == 4096 and c[\"prefill_chunk_size\"] == 4096
assert (c[\"temperature\"], c[\"top_p\"], c[\"pad_token_id\"]) == (0.6, 0.9, 0)
assert c[\"active_vocab_size\"] == 32000 and t == \"llama-2\"
assert c[\"tokenizer_info\"] == {\"token_postproc_method\": \"byte_fallback\", \"prepend_space_in_encode\": True, \"strip_space_in_decode\": True}"
'

test_expect_success 'Llama 3 8B Instruct: eos list from generation_config.json, 128256 tokens' '
	expect llama3-8b-instruct "
assert mc[\"position_embedding_base\"] == 500000.0 and mc[\"head_dim\"] == 128 and mc[\"num_key_value_heads\"] == 8
assert c[\"context_window_size\"] == 8192 and c[\"prefill_chunk_size\"] == 8192
assert c[\"bos_token_id\"] == 128000 and c[\"eos_token_id\"] == [128001, 128009]
assert c[\"active_vocab_size\"] == 128256 and t == \"llama-3\"
assert c[\"tokenizer_info\"][\"token_postproc_method\"] == \"byte_level\"
assert c[\"tokenizer_files\"] == [\"tokenizer.json\", \"tokenizer_config.json\"]" &&
	test_grep "conversation template llama-3:" err-llama3-8b-instruct
'

test_expect_success 'Llama 3.1 8B Instruct: llama3 rope scaling kept as written, 128K context' '
	expect llama31-8b-instruct "
assert mc[\"rope_scaling\"] == {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}
assert list(mc[\"rope_scaling\"])[0] == \"factor\"
assert c[\"context_window_size\"] == 131072 and c[\"prefill_chunk_size\"] == 8192
assert c[\"eos_token_id\"] == [128001, 128008, 128009] and t == \"llama-3_1\"" &&
	! grep -q warning err-llama31-8b-instruct
'

test_expect_success 'Llama 3.2 1B Instruct: explicit head_dim, tied embeddings' '
	expect llama32-1b-instruct "
assert mc[\"head_dim\"] == 64 and mc[\"tie_word_embeddings\"] is True and mc[\"rope_scaling\"][\"factor\"] == 32.0
assert mc[\"num_hidden_layers\"] == 16 and c[\"prefill_chunk_size\"] == 8192 and t == \"llama-3_1\""
'

test_expect_success 'TinyLlama 1.1B Chat: GQA 32/4, Zephyr template' '
	expect tinyllama-chat "
assert (mc[\"num_attention_heads\"], mc[\"num_key_value_heads\"], mc[\"head_dim\"]) == (32, 4, 64)
assert c[\"context_window_size\"] == 2048 and c[\"prefill_chunk_size\"] == 2048
assert (c[\"temperature\"], c[\"top_p\"]) == (1.0, 1.0) and t == \"tinyllama_v1_0\""
'

test_expect_success 'SmolLM 135M Instruct: 9 heads of 64, ChatML, pad from config' '
	expect smollm-135m-instruct "
assert (mc[\"num_attention_heads\"], mc[\"num_key_value_heads\"], mc[\"head_dim\"]) == (9, 3, 64)
assert mc[\"tie_word_embeddings\"] is True and c[\"pad_token_id\"] == 2 and t == \"chatml\"
assert c[\"active_vocab_size\"] == 49152"
'

test_expect_success 'Mistral 7B v0.1: a sliding window makes the context -1' '
	expect mistral-7b-v01 "
assert c[\"context_window_size\"] == -1 and mc[\"context_window_size\"] == -1
assert c[\"sliding_window_size\"] == 4096 and c[\"prefill_chunk_size\"] == 4096 and c[\"attention_sink_size\"] == 4
assert c[\"pipeline_parallel_stages\"] == 1 and \"tie_word_embeddings\" not in mc and t == \"LM\""
'

test_expect_success 'Mistral 7B Instruct v0.3: sliding_window null, 32K context' '
	expect mistral-7b-instruct-v03 "
assert c[\"sliding_window_size\"] == -1 and c[\"context_window_size\"] == 32768 and c[\"prefill_chunk_size\"] == 8192
assert mc[\"position_embedding_base\"] == 1000000.0 and t == \"mistral_default\"
assert c[\"tokenizer_info\"] == {\"token_postproc_method\": \"byte_fallback\", \"prepend_space_in_encode\": False, \"strip_space_in_decode\": False}"
'

test_expect_success 'Qwen2.5 0.5B Instruct: active vocabulary 151665 of 151936 rows' '
	expect qwen25-05b-instruct "
assert mc[\"rope_theta\"] == 1000000.0 and mc[\"head_dim\"] == 64 and mc[\"dtype\"] == \"float32\"
assert c[\"vocab_size\"] == 151936 and c[\"active_vocab_size\"] == 151665
assert c[\"sliding_window_size\"] == -1 and c[\"context_window_size\"] == 32768 and c[\"prefill_chunk_size\"] == 8192
assert c[\"eos_token_id\"] == [151645, 151643] and c[\"pad_token_id\"] == 151643 and c[\"repetition_penalty\"] == 1.1
assert t == \"qwen2\""
'

test_expect_success 'Qwen3 0.6B: head_dim 128 with hidden 1024, prefill capped at 2048' '
	expect qwen3-06b "
assert mc[\"head_dim\"] == 128 and mc[\"hidden_size\"] == 1024 and mc[\"num_attention_heads\"] == 16
assert mc[\"rope_theta\"] == 1000000 and type(mc[\"rope_theta\"]) is int
assert c[\"context_window_size\"] == 40960 and c[\"prefill_chunk_size\"] == 2048
assert c[\"active_vocab_size\"] == 151669 and mc[\"weight_block_size\"] is None
assert t == \"qwen3\" and c[\"conv_template\"][\"strip_reasoning_in_history\"] is True"
'

test_done
