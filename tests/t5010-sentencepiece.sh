#!/bin/sh
# tokenizer.model: ids and texts match the SentencePiece library (Debian's
# python3-sentencepiece, run now) on the corpus, for stories260K's model and
# for small models covering Unigram, BPE, byte fallback, the nmt_nfkc
# precompiled charsmap, user-defined symbols, and the normalizer switches
# (tests/tokenizer-oracle/make_spm_models.py made them).
. "$(dirname "$0")/lib.sh"

CORPUS="$FIXTURES/tokenizers/corpus.json"

if ! "$PYTHON" -c "import sentencepiece" 2>/dev/null; then
	test_skip 'SentencePiece agreement' 'python3-sentencepiece is not installed'
	test_done
fi

check_model () {
	mkdir -p "$2" &&
	cp "$1" "$2/tokenizer.model" &&
	"$PYTHON" "$TESTS_DIR/helpers/spm_expect.py" "$1" "$CORPUS" >"$2.jsonl" &&
	n=$(wc -l <"$2.jsonl") &&
	test "$n" -gt 300 &&
	tokcorpus "$2" "$2.jsonl" >"$2.out" &&
	test_grep ": $n of $n strings agree" "$2.out"
}

test_expect_success 'stories260K tokenizer.model (BPE, byte fallback) matches SentencePiece' '
	check_model "$FIXTURES/stories260K/tokenizer.model" stories
'

for m in unigram-nfkc bpe-plain unigram-bytes; do
	test_expect_success "$m.model matches SentencePiece" "
		check_model \"$FIXTURES/sentencepiece/$m.model\" $m
	"
done

test_expect_success 'its charsmap as a Precompiled normalizer in tokenizer.json agrees too' '
	# the unigram-nfkc model converted the way HuggingFace converts
	# T5/ALBERT tokenizers, on the strings where the pipelines must agree
	"$PYTHON" "$TESTS_DIR/helpers/spm_to_json.py" "$FIXTURES/sentencepiece/unigram-nfkc.model" "$CORPUS" conv &&
	n=$(wc -l <conv/expected.jsonl) &&
	test "$n" -gt 200 &&
	tokcorpus conv conv/expected.jsonl >conv.out &&
	test_grep ": $n of $n strings agree" conv.out
'

test_expect_success 'tokenizer.model differs from tokenizer.json only where documented' '
	# SentencePiece removes extra whitespace, the tokenizer.json of the same
	# model does not (tests/fixtures/stories260K/README.md)
	mkdir -p sp &&
	cp "$FIXTURES/stories260K/tokenizer.model" sp/ &&
	mlc-check -q -m sp --tokenize "Once upon a time" --ids >a &&
	mlc-check -q -m "$FIXTURES/stories260K" --tokenize "Once upon a time" --ids >b &&
	test_cmp a b &&
	mlc-check -q -m sp --tokenize "  Once  upon" --ids >a &&
	mlc-check -q -m "$FIXTURES/stories260K" --tokenize "  Once  upon" --ids >b &&
	! cmp -s a b &&
	echo "1 403 407" >want && test_cmp want a
'

test_expect_success 'a truncated model is refused with a clear message' '
	mkdir -p trunc &&
	head -c 3000 "$FIXTURES/stories260K/tokenizer.model" >trunc/tokenizer.model &&
	test_must_fail mlc-check -m trunc --tokenize x 2>err &&
	test_grep "tokenizer.model: .*malformed protobuf" err
'

test_done
