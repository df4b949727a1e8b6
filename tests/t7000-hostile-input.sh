#!/bin/sh
# Hostile input: the minimal reproducer of every crash, leak, runaway regex,
# pickle amplification and storage bomb found by fuzzing and by hand. Each is
# refused with a one-line error naming the file and the field, exit status 1,
# within 20 seconds and 1 GB.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

HOSTILE="$PYTHON $SRC_DIR/tests/helpers/mkhostile.py"

# refused LIMIT_MB CMD...: CMD exits 1 (not by a signal) within 20 s, its
# peak memory under LIMIT_MB, with exactly one line on stderr (kept in err).
refused () {
	limit=$1
	shift
	set +e
	timeout 20 /usr/bin/time -f "%M" -o rss "$@" 2>err >/dev/null
	rc=$?
	set -e
	# time appends its own line to err when the command fails
	grep -v "^Command exited with non-zero status" err >err.1 || true
	mv err.1 err
	cat err
	if [ $rc -ne 1 ]; then echo "exit status $rc, wanted 1"; return 1; fi
	test_line_count = 1 err
	kb=$(tail -n 1 rss)
	if [ "$kb" -gt $((limit * 1024)) ]; then echo "peak RSS $kb KB, over $limit MB"; return 1; fi
}

test_expect_success 'a config record without path or dir: mlc-lower says which field is missing' '
	$HOSTILE config-record c.mp &&
	test "$(wc -c <c.mp)" -eq 21 &&
	refused 100 mlc-lower -q <c.mp &&
	test_grep "config record: missing field .path." err
'

test_expect_success 'a record nested a million deep is "nested too deeply"' '
	$HOSTILE deep-nesting deep.mp &&
	refused 200 mlc-dump deep.mp &&
	test_grep "deep.mp: byte 37: record 0: nested too deeply" err &&
	refused 200 mlc-lower -q <deep.mp &&
	test_grep "nested too deeply" err
'

test_expect_success 'an array header declaring 4 billion elements allocates nothing for them' '
	$HOSTILE huge-array huge.mp &&
	refused 100 mlc-dump huge.mp &&
	test_grep "byte 10: record 0: declares more than 16777216 elements" err
'

test_expect_success 'set up stories260K q4f16_1 through mlc-lower' '
	mlc-fetch -q "$STORIES" <"$TRASH/.empty" >m.1.mp &&
	mlc-cfg -q --quantization q4f16_1 -o m <m.1.mp >m.2.mp &&
	mlc-quant -q <m.2.mp >m.3.mp &&
	mlc-lower -q <m.3.mp >m.4.mp
'

test_expect_success 'a module parameter without a shape is refused (and its dtype not leaked)' '
	mlc-dump m.4.mp >m.4.json &&
	$PYTHON - <<-PY &&
	import json
	out = open("noshape.json", "w")
	for line in open("m.4.json"):
	    r = json.loads(line)
	    if r["type"] == "module":
	        del r["params"][0]["shape"]
	    out.write(json.dumps(r) + "\n")
	PY
	mlc-dump --pack <noshape.json >noshape.mp &&
	refused 200 mlc-emit -q --module noshape.mp -o lib.tar </dev/null &&
	test_grep "params\[0\]" err && test_grep "shape" err && test ! -e lib.tar
'

regex_tokenizer () {
	mkdir -p "$1" &&
	cp "$STORIES"/*.json "$1"/ &&
	$PYTHON - "$1/tokenizer.json" "$2" <<-'PY'
	import json, sys
	d = json.load(open(sys.argv[1]))
	d["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": sys.argv[2]},
	                      "behavior": "Isolated", "invert": False}
	json.dump(d, open(sys.argv[1], "w"))
	PY
}

A81=$($PYTHON -c 'print("a" * 80 + "!")')
for pat in '(a+)+$' '(a|aa)+$' '(\w+\s?)*$'; do
	test_expect_success "a catastrophic Split regex /$pat/ is refused, not run for minutes" '
		regex_tokenizer rx "$pat" &&
		refused 200 mlc-check -q --model rx --tokenize "$A81" &&
		test_grep "rx/tokenizer.json: pre_tokenizer.pattern: regex /" err &&
		test_grep "backtracking steps on" err
	'
done

test_expect_success 'the same Split with a harmless regex still tokenizes' '
	regex_tokenizer plain "a+|[^a]+" &&
	mlc-check -q --model plain --tokenize "$A81" >ids &&
	test -s ids
'

cat >cfg.json <<'JSON'
{"model_type": "llama", "quantization": "q0f32",
 "model_config": {"hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4,
  "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 512, "head_dim": 16}}
JSON

test_expect_success 'a pickle building a list of 2 million None is cut off at the object limit' '
	mkdir pl && $HOSTILE pickle-list pl/pytorch_model.bin &&
	refused 400 mlc-quant -q --config cfg.json --model pl -o plout --stream /dev/null &&
	test_grep "pytorch_model.bin: archive/data.pkl: byte .*more than 1048576 objects" err &&
	test ! -e plout/tensor-cache.json
'

test_expect_success 'a 64-element tensor backed by a 64 MiB storage is refused before inflating it' '
	mkdir sb && $HOSTILE storage-bomb sb/pytorch_model.bin &&
	refused 100 mlc-quant -q --config cfg.json --model sb -o sbout --stream /dev/null &&
	test_grep "tensor .w.: storage data/0 holds 67108864 bytes, but its tensors use only 256" err
'

test_expect_success 'a safetensors shape whose byte count passes 2^64 is reported without wrapping' '
	mkdir so && $HOSTILE st-overflow so/model.safetensors &&
	refused 100 mlc-quant -q --config cfg.json --model so -o soout --stream /dev/null &&
	test_grep "tensor .w.: shape and dtype give 4611686018427387904 elements of 4 bytes" err &&
	test_lacks "18446744" err
'

test_expect_success 'mlc-cfg quotes at most 60 bytes of a token past the vocabulary' '
	cp -R "$STORIES" lt &&
	$PYTHON - <<-PY &&
	import json
	p = "lt/tokenizer.json"; d = json.load(open(p))
	d["added_tokens"].append({"id": 600, "content": "x" * 5000, "single_word": False, "lstrip": False,
	                          "rstrip": False, "normalized": False, "special": True})
	json.dump(d, open(p, "w"))
	PY
	refused 100 mlc-cfg -q --model lt --quantization q4f16_1 -o ltout </dev/null &&
	test_grep "token id 600 (.x\{60\}\.\.\..) is past" err &&
	test "$(wc -c <err)" -lt 400
'

test_expect_success 'a token longer than 64 KiB is refused by name, quoting only its start' '
	cp -R "$STORIES" ht &&
	$PYTHON - <<-PY &&
	import json
	p = "ht/tokenizer.json"; d = json.load(open(p))
	d["added_tokens"].append({"id": 3, "content": "y" * 100000, "single_word": False, "lstrip": False,
	                          "rstrip": False, "normalized": False, "special": True})
	json.dump(d, open(p, "w"))
	PY
	refused 100 mlc-cfg -q --model ht --quantization q4f16_1 -o htout </dev/null &&
	test_grep "added_tokens: a token of 100000 bytes (at most 65536 allowed)" err &&
	test "$(wc -c <err)" -lt 400 &&
	refused 100 mlc-check -q --model ht --tokenize hello &&
	test_grep "added_tokens\[3\]: content longer than 65536 bytes" err
'

test_done
