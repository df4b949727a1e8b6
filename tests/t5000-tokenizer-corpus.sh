#!/bin/sh
# The tokenizer gives exactly HuggingFace's ids and texts for every corpus
# string with five real tokenizers (tests/fixtures/tokenizers/README.md).
. "$(dirname "$0")/lib.sh"

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

for name in llama3 qwen3 gemma3 mistral; do
	test_expect_success "$name: ids, texts and streamed texts match HuggingFace on the corpus" "
		unpack $name &&
		n=\$(wc -l <\"$TOK/expected/$name.jsonl\") &&
		test \$n -gt 300 &&
		tokcorpus $name \"$TOK/expected/$name.jsonl\" >out &&
		test_grep \": \$n of \$n strings agree\" out
	"
done

test_expect_success 'stories260K tokenizer.json matches HuggingFace on the corpus' '
	mkdir s && cp "$FIXTURES/stories260K/tokenizer.json" "$FIXTURES/stories260K/tokenizer_config.json" s/ &&
	n=$(wc -l <"$TOK/expected/stories260K.jsonl") &&
	tokcorpus s "$TOK/expected/stories260K.jsonl" >out &&
	test_grep ": $n of $n strings agree" out
'

test_expect_success 'a wrong expectation is reported (the check can fail)' '
	sed -e "1s/\"ids\":\[\([0-9]*\)/\"ids\":[9\1/" "$TOK/expected/llama3.jsonl" >bad.jsonl &&
	! cmp -s bad.jsonl "$TOK/expected/llama3.jsonl" &&
	test_must_fail tokcorpus llama3 bad.jsonl >out &&
	test_grep "ids differ" out &&
	n=$(wc -l <bad.jsonl) &&
	test_grep ": $((n - 1)) of $n strings agree" out
'

test_done
