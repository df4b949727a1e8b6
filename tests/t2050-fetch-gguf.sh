#!/bin/sh
# mlc-fetch on GGUF files (written by tests/helpers/gguf_write.py from the
# published specification): a .gguf file or a directory holding one becomes
# a `model` record with format gguf; hostile files get one-line errors that
# name the file and the field, and no record.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

GW="$PYTHON $SRC_DIR/tests/helpers/gguf_write.py"

# A hub repository of quantizations, as GGUF repositories are published.
mkdir ggrepo &&
$GW write "$FIXTURES/stories260K" ggrepo/stories-F32.gguf --type f32 &&
$GW write "$FIXTURES/stories260K" ggrepo/stories-Q8_0.gguf --type q8_0 &&
echo "# stories260K in GGUF" >ggrepo/README.md || exit 1
start_hub hub --repo org/stories-GGUF=ggrepo

test_expect_success 'set up: stories260K as a float32 GGUF' '
	mkdir g && $GW write "$FIXTURES/stories260K" g/stories.gguf --type f32
'

test_expect_success 'a .gguf file: format gguf, the file alone, its sha256' '
	mlc-fetch -q g/stories.gguf >m.mp &&
	mlc-dump m.mp >m.json &&
	$PYTHON - <<-PY
	import hashlib, json, os
	r = json.loads(open("m.json").read().splitlines()[-1])
	assert r["type"] == "model" and r["kind"] == "hf" and r["format"] == "gguf", r
	assert r["path"] == os.path.abspath("g"), r["path"]
	assert [f["name"] for f in r["files"]] == ["stories.gguf"], r["files"]
	assert r["files"][0]["sha256"] == hashlib.sha256(open("g/stories.gguf", "rb").read()).hexdigest()
	PY
'

test_expect_success 'a directory holding one .gguf (and nothing else it needs) is that model' '
	mlc-fetch -q g >d.mp &&
	test "$(mlc-dump d.mp)" = "$(mlc-dump m.mp | sed "s|\"source\":\"g/stories.gguf\"|\"source\":\"g\"|")"
'

test_expect_success 'two .gguf files in a directory: name one (or --include picks it)' '
	cp g/stories.gguf g/other.gguf &&
	test_must_fail mlc-fetch -q g 2>err &&
	test_grep "2 .gguf files (other.gguf, stories.gguf): choose one with --include" err &&
	mlc-fetch -q --include "stories*" g >inc.mp &&
	test "$(mlc-dump inc.mp | grep -c stories.gguf)" = 1 &&
	mlc-fetch -q g/other.gguf >other.mp &&
	mlc-dump other.mp | grep -q "\"name\":\"other.gguf\"" &&
	rm g/other.gguf
'

test_expect_success 'a file that is not a .gguf is refused' '
	test_must_fail mlc-fetch -q "$FIXTURES/stories260K/config.json" 2>err &&
	test_grep "not a directory (a model is a directory, or a single .gguf file)" err
'

for kind in lying-offset overflow-dims huge-string unknown-type unknown-value-type truncated \
	duplicate-key misaligned overlap huge-count bad-magic zero-dims bad-alignment; do
	test_expect_success "hostile GGUF ($kind): one line naming the file and the field, no record" "
		mkdir -p h-$kind && $GW hostile $kind h-$kind/bad.gguf &&
		test_must_fail mlc-fetch -q h-$kind/bad.gguf >out 2>err &&
		test_must_be_empty out &&
		test_line_count = 1 err &&
		test_grep '^mlc-fetch: error: h-$kind/bad.gguf: ' err
	"
done

test_expect_success 'the hostile messages say what was wrong' '
	for k in lying-offset overflow-dims huge-string unknown-type; do
		test_must_fail mlc-fetch -q h-$k/bad.gguf 2>>all.err
	done &&
	test_grep "tensor .token_embd.weight.: its 32 bytes at data offset 1048576 lie past the end of the file" all.err &&
	test_grep "tensor .token_embd.weight.: the dimensions overflow" all.err &&
	test_grep "metadata .general.architecture.: the string length 2305843009213693952 is past the end of the file" all.err &&
	test_grep "tensor .token_embd.weight.: unknown tensor type 99" all.err
'

test_expect_success 'a hub repository of GGUF files: --include picks one; the cache keeps it' '
	test_must_fail mlc-fetch -q HF://org/stories-GGUF <"$NO_STREAM" 2>err &&
	test_grep "HF://org/stories-GGUF: 2 .gguf files (stories-F32.gguf, stories-Q8_0.gguf): choose one with --include" err &&
	mlc-fetch -q --include "*Q8_0*" HF://org/stories-GGUF <"$NO_STREAM" >hub.mp &&
	test "$(model_field format hub.mp)" = gguf &&
	mlc-dump hub.mp | grep -q "\"files\":\[{\"name\":\"stories-Q8_0.gguf\"" &&
	cmp "$(model_field path hub.mp)/stories-Q8_0.gguf" ggrepo/stories-Q8_0.gguf &&
	mlc-fetch -q --include "*Q8_0*" HF://org/stories-GGUF <"$NO_STREAM" >again.mp &&
	test "$(mlc-dump hub.mp)" = "$(mlc-dump again.mp)"
'

test_done
