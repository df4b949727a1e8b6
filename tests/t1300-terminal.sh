#!/bin/sh
# Binary records never go to a terminal: each tool run on a pseudo-terminal
# (script(1)) withholds its records with one note, and --stream FILE or a
# pipe still gets them. Text goes where it belongs; a reader that goes away
# (`| head`) ends a tool quietly.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

# on_tty OUT CMD: run the shell command CMD with a pseudo-terminal as its
# standard output (and error); what it shows goes to OUT
on_tty () {
	out=$1
	shift
	script -qec "$*" /dev/null </dev/null >"$out"
}

# no msgpack map with a "type" key in FILE
no_records () {
	if grep -c "$(printf '\244type')" "$1" >/dev/null; then
		echo "records were written to the terminal:"
		od -c "$1" | head -n 10
		return 1
	fi
}

test_expect_success 'set up a model through a pipe' '
	build_model "$STORIES" q4f16_1 m &&
	mlc-check -q --raw --greedy --prompt Once --max-tokens 4 <m.mp >check.mp
'

for tool in \
	"fetch:mlc-fetch $STORIES" \
	"cfg:mlc-cfg --model $STORIES --quantization q4f16_1 -o cfg" \
	"quant:mlc-quant <m.2-cfg.mp" \
	"lower:mlc-lower <m.3-quant.mp" \
	"emit:mlc-emit <m.4-lower.mp" \
	"check:mlc-check --raw --greedy --prompt Once --max-tokens 4 <m.mp" \
	"dump --pack:mlc-dump check.mp | mlc-dump --pack"
do
	name=${tool%%:*} cmd=${tool#*:}
	test_expect_success "mlc-$name on a terminal: a note, no records" '
		on_tty out "$cmd" &&
		no_records out &&
		test_grep "records not written: standard output is a terminal (use --stream FILE or a pipe)" out
	'
done

test_expect_success '--stream FILE on a terminal still gets the records' '
	on_tty out "mlc-lower --stream lowered.mp <m.3-quant.mp" &&
	no_records out && test_lacks "records not written" out &&
	test "$(record_field lowered.mp module "r[\"type\"]")" = module
'

test_expect_success 'a failing stage on a terminal writes no records and no note' '
	on_tty out "mlc-lower --config nowhere.json; echo status \$?" &&
	no_records out && test_lacks "records not written" out &&
	test_grep "status 1" out
'

test_expect_success 'mlc-check --tokenize | head: no error when the reader goes away' '
	yes "Once upon a time there was a little girl." | head -n 2000 | tr "\n" " " >long.txt &&
	text=$(cat long.txt) &&
	{ mlc-check -q --model "$STORIES" --tokenize "$text" 2>err; echo $? >status; } | head -n 1 >first &&
	test_must_be_empty err &&
	test "$(cat status)" = 141 &&
	test_grep "^1	" first
'

test_expect_success 'JSON records on standard input: a hint to pack them' '
	mlc-dump m.mp >m.json &&
	test_must_fail mlc-lower <m.json 2>err &&
	test_grep "not a msgpack map .*JSON records? turn them into a stream with mlc-dump --pack" err
'

test_done
