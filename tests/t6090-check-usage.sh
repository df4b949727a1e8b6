#!/bin/sh
# What a user meets with mlc-check: the missing piece named, labelled
# answers, and the exit statuses every tool shares (usage 2, data 1).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up stories260K q4f16_1' '
	build_model "$STORIES" q4f16_1 m
'

test_expect_success 'config and weights but no library: the library is what is missing' '
	test_must_fail mlc-check --raw <m.3-quant.mp >out 2>err &&
	test_grep "no model library: give --library FILE" err &&
	test_lacks "mlc-chat-config.json" err &&
	test_must_fail mlc-check --raw --config m/mlc-chat-config.json --weights m <"$TRASH/.empty" 2>err &&
	test_grep "no model library" err
'

test_expect_success 'several --generate answers, each under its prompt' '
	mlc-check -q --generate --raw --greedy --max-tokens 6 --prompt "Once upon a time" --prompt "The cat" <m.mp >out &&
	test "$(grep -c "^### " out)" = 2 &&
	sed -n 1p out | test_grep "^### Once upon a time$" &&
	test_grep "^### The cat$" out &&
	mlc-check -q --generate --raw --greedy --max-tokens 6 --prompt "Once upon a time" <m.mp >one &&
	test_lacks "^###" one
'

test_expect_success '--depfile: the files mlc-check read, for its --stream file' '
	mlc-check -q --raw --greedy --prompt Once --max-tokens 2 --stream c.mp --depfile c.d <m.mp &&
	sed -n 1p c.d | test_grep "^c.mp: \\\\$" &&
	for f in m/m-cpu.tar m/params_shard_0.bin m/mlc-chat-config.json m/tokenizer.json; do
		test_grep "^  $(cd "$(dirname $f)" && pwd)/$(basename $f)\( \\\\\)\{0,1\}$" c.d || return 1
	done &&
	{ mlc-check --depfile x.d <m.mp 2>err; test $? = 2; } && test_grep "give it too" err
'

test_expect_success 'usage errors exit 2 in every tool; bad data exits 1' '
	for t in fetch cfg quant lower emit check dump; do
		{ mlc-$t --no-such-option <"$TRASH/.empty" 2>err; echo $? >status; } &&
		test "$(cat status)" = 2 && test_grep "Try .mlc-$t --help." err || return 1
	done &&
	printf "not a stream" >bad.mp &&
	for t in "cfg --quantization q4f16_1 -o x" quant lower emit check dump; do
		{ mlc-$t <bad.mp >/dev/null 2>err; echo $? >status; } &&
		test "$(cat status)" = 1 && test_grep "not a msgpack map" err || return 1
	done
'

test_expect_success 'every manual page documents the exit statuses' '
	for page in "$SRC_DIR"/man/mlc-*.1; do
		grep -q "^\.SH EXIT STATUS" "$page" &&
		sed -n "/^\.SH EXIT STATUS/,/^\.SH /p" "$page" | grep -q "130" &&
		sed -n "/^\.SH EXIT STATUS/,/^\.SH /p" "$page" | grep -qi "usage" || { echo "$page"; return 1; }
	done
'

test_done
