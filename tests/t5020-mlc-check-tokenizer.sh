#!/bin/sh
# mlc-check --tokenize / --detokenize: output format, the order tokenizer
# files are looked for, vocab.json + merges.txt, and errors.
. "$(dirname "$0")/lib.sh"

S="$FIXTURES/stories260K"

test_expect_success '--help and --version' '
	mlc-check --help >out &&
	test_grep -e "--tokenize" out &&
	test_grep -e "--detokenize" out &&
	mlc-check --version >out &&
	test_grep "^mlc-check (mlc-pipe) " out
'

test_expect_success 'usage errors exit 2' '
	set +e
	mlc-check --tokenize x 2>err; rc3=$?
	mlc-check -m "$S" --tokenize x --detokenize 1 2>err; rc4=$?
	mlc-check -m "$S" --detokenize "1,x" 2>err; rc5=$?
	set -e
	test "$rc3$rc4$rc5" = 222 &&
	test_grep "expected token ids" err
'

test_expect_success 'a check with nothing to load says what is missing (exit 1)' '
	set +e
	mlc-check </dev/null 2>err1; rc1=$?
	mlc-check -m "$S" </dev/null 2>err2; rc2=$?
	set -e
	test "$rc1$rc2" = 11 &&
	test_grep "no mlc-chat-config.json: give --model DIR" err1 &&
	test_grep "no model library: give --library FILE" err2
'

test_expect_success 'tokenize prints ids and pieces (stories260K, known ids)' '
	mlc-check -q -m "$S" --tokenize "Once upon a time" >out &&
	printf "1\t\"<s>\"\n403\t\"▁Once\"\n407\t\"▁upon\"\n261\t\"▁a\"\n378\t\"▁time\"\n" >want &&
	test_cmp want out
'

test_expect_success '--ids and --no-special' '
	mlc-check -q -m "$S" --tokenize "Once upon a time" --ids --no-special >out &&
	echo "403 407 261 378" >want &&
	test_cmp want out
'

test_expect_success 'detokenize the known greedy story of stories260K' '
	mlc-check -q -m "$S" --detokenize "1,403,407,261,378,432,383,286,261,376,298,315,421,395,317,426,338" >out &&
	echo "<s> Once upon a time, there was a little girl named Lily. She" >want &&
	test_cmp want out &&
	mlc-check -q -m "$S" --detokenize "1 403 407" --no-special >out &&
	echo "Once upon" >want &&
	test_cmp want out
'

test_expect_success 'an id outside the vocabulary is an error' '
	test_must_fail mlc-check -q -m "$S" --detokenize 512 2>err &&
	test_grep "token id 512 is outside the vocabulary (512 tokens)" err
'

test_expect_success 'text that is not UTF-8 is refused' '
	test_must_fail mlc-check -q -m "$S" --tokenize "$(printf "a\377b")" 2>err &&
	test_grep "not valid UTF-8" err
'

test_expect_success 'tokenizer.json is preferred to tokenizer.model' '
	mkdir both && cp "$S/tokenizer.json" "$S/tokenizer.model" both/ &&
	mlc-check -m both --tokenize "a  b" --ids 2>err >out &&
	test_grep "tokenizer: tokenizer.json, 512 tokens" err &&
	rm both/tokenizer.json &&
	mlc-check -m both --tokenize "a  b" --ids 2>err >out2 &&
	test_grep "tokenizer: tokenizer.model, 512 tokens" err &&
	! cmp -s out out2
'

# A GPT-2 style byte-level BPE by hand: "hello" and " world" merge fully
# (ranks 0-3 and 4-8); x is in no vocabulary entry and there is no unknown
# token, so it is dropped.
make_gpt2 () {
	mkdir -p "$1" &&
	cat >"$1/vocab.json" <<-\JSON &&
	{"h":0,"e":1,"l":2,"o":3,"Ġ":4,"w":5,"r":6,"d":7,"he":8,"ll":9,"llo":10,
	 "hello":11,"Ġw":12,"or":13,"Ġwor":14,"ld":15,"Ġworld":16,"<|endoftext|>":17}
	JSON
	printf "#version: 0.2\nh e\nl l\nll o\nhe llo\nĠ w\no r\nĠw or\nl d\nĠwor ld\n" >"$1/merges.txt"
}

test_expect_success 'vocab.json + merges.txt: byte-level BPE with the GPT-2 regex' '
	make_gpt2 g &&
	mlc-check -m g --tokenize "hello world" --ids 2>err >out &&
	test_grep "tokenizer: vocab.json+merges.txt, 18 tokens" err &&
	echo "11 16" >want && test_cmp want out &&
	mlc-check -q -m g --tokenize "xhello" --ids >out &&
	echo "11" >want && test_cmp want out &&
	mlc-check -q -m g --detokenize "11 16 16" >out &&
	echo "hello world world" >want && test_cmp want out
'

test_expect_success 'added_tokens.json entries are matched in the text' '
	make_gpt2 g2 &&
	echo "{\"<tool>\": 18}" >g2/added_tokens.json &&
	mlc-check -q -m g2 --tokenize "hello<tool> world" --ids >out &&
	echo "11 18 16" >want && test_cmp want out &&
	mlc-check -q -m g2 --detokenize "11 18" >out &&
	echo "hello<tool>" >want && test_cmp want out
'

test_expect_success 'the same files as a tokenizer.json give the same ids' '
	make_gpt2 g3 && mkdir j &&
	{
		printf "{\"model\":{\"type\":\"BPE\",\"vocab\":" &&
		cat g3/vocab.json &&
		printf ",\"merges\":[\"h e\",\"l l\",\"ll o\",\"he llo\",\"Ġ w\",\"o r\",\"Ġw or\",\"l d\",\"Ġwor ld\"]}," &&
		printf "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}," &&
		printf "\"decoder\":{\"type\":\"ByteLevel\"}}"
	} >j/tokenizer.json &&
	for t in "hello world" " hello  world" "world hello"; do
		mlc-check -q -m g3 --tokenize "$t" --ids >a &&
		mlc-check -q -m j --tokenize "$t" --ids >b &&
		test_cmp a b || return 1
	done
'

test_expect_success 'errors name the file and the field' '
	mkdir bad &&
	printf "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}" >bad/tokenizer.json &&
	test_must_fail mlc-check -m bad --tokenize a 2>err &&
	test_grep "bad/tokenizer.json: model.merges\[0\]: a merge whose parts or result are not in the vocabulary" err &&
	printf "{\"model\":{\"type\":\"Mystery\"}}" >bad/tokenizer.json &&
	test_must_fail mlc-check -m bad --tokenize a 2>err &&
	test_grep "bad/tokenizer.json: model.type: unsupported model type .Mystery." err &&
	printf "{\n  \"model\" {}\n}" >bad/tokenizer.json &&
	test_must_fail mlc-check -m bad --tokenize a 2>err &&
	test_grep "bad/tokenizer.json:2:11: expected .:." err &&
	printf "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}" >bad/tokenizer.json &&
	test_must_fail mlc-check -m bad --tokenize a 2>err &&
	test_grep "bad/tokenizer.json: pre_tokenizer.pattern: regex /(/: missing closing parenthesis" err &&
	test_line_count = 1 err
'

test_expect_success 'a directory without a tokenizer is an error' '
	mkdir empty &&
	test_must_fail mlc-check -m empty --tokenize a 2>err &&
	test_grep "empty: no tokenizer.json, tokenizer.model or vocab.json + merges.txt" err &&
	test_must_fail mlc-check -m nowhere --tokenize a 2>err &&
	test_grep "nowhere: not a directory" err
'

test_done
