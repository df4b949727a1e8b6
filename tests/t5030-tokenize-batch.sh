#!/bin/sh
# Batch tokenization: mlc-check --tokenize-file gives, line for line, the ids
# --tokenize gives each text; JSON lines carry texts with newlines; '-'
# reads standard input, as --tokenize - does.
. "$(dirname "$0")/lib.sh"

STORIES="$FIXTURES/stories260K"
ids () { mlc-check -q --model "$STORIES" --ids --tokenize "$1"; }

test_expect_success 'one line of ids per line of text, as --tokenize gives them' '
	printf "Once upon a time\n\nThe cat sat on the mat.\r\n  spaces  \n" >texts &&
	mlc-check -q --model "$STORIES" --tokenize-file texts >got &&
	{ ids "Once upon a time"; ids ""; ids "The cat sat on the mat."; ids "  spaces  "; } >want &&
	test_cmp want got &&
	test_line_count = 4 got
'

test_expect_success 'JSON lines: the "text" field, newlines and all' '
	printf "%s\n" "{\"text\": \"Once upon\\na time\", \"id\": 7}" "plain line" >mixed &&
	mlc-check -q --model "$STORIES" --tokenize-file mixed >got &&
	{ ids "Once upon
a time"; ids "plain line"; } >want &&
	test_cmp want got
'

test_expect_success "'-' reads standard input; --no-special drops BOS" '
	printf "Once upon a time\n" | mlc-check -q --model "$STORIES" --no-special --tokenize-file - >got &&
	mlc-check -q --model "$STORIES" --no-special --ids --tokenize "Once upon a time" >want &&
	test_cmp want got
'

test_expect_success '--tokenize - tokenizes standard input (less its final newline)' '
	printf "Once upon a time\n" | mlc-check -q --model "$STORIES" --ids --tokenize - >got &&
	ids "Once upon a time" >want &&
	test_cmp want got
'

test_expect_success 'a JSON line without a text field names the file and the line' '
	printf "%s\n" "fine" "{\"txt\": \"x\"}" >bad &&
	test_must_fail mlc-check -q --model "$STORIES" --tokenize-file bad >out 2>err &&
	test_grep "bad:2: a JSON line needs a string field \"text\"" err &&
	printf "%s\n" "{\"text\": " >bad &&
	test_must_fail mlc-check -q --model "$STORIES" --tokenize-file bad 2>err &&
	test_grep "bad:1: not a JSON object" err
'

test_expect_success 'a large batch loads the tokenizer once and ends quietly under head' '
	yes "Once upon a time there was a little girl named Lily." | head -n 20000 >many &&
	mlc-check -q --model "$STORIES" --tokenize-file many >all &&
	test_line_count = 20000 all &&
	test "$(sort -u all | wc -l)" = 1 &&
	{ mlc-check -q --model "$STORIES" --tokenize-file many 2>err; echo $? >status; } | head -n 2 >two &&
	test_line_count = 2 two && test_must_be_empty err && test "$(cat status)" = 141
'

test_done
