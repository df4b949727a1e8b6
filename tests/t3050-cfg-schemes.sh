#!/bin/sh
# mlc-cfg refuses up front the schemes MLC-LLM names but mlc-quant cannot
# write, and its config record carries the model, so that
# `mlc-cfg --model DIR | mlc-quant` finds the weights.
. "$(dirname "$0")/lib.sh"

STORIES="$FIXTURES/stories260K"
: >empty

for scheme in q4f16_ft q4f16_autoawq fp8_e4m3fn_bf16_block_scale; do
	test_expect_success "--quantization $scheme: a usage error naming the schemes mlc-quant writes" '
		{ mlc-cfg --model "$STORIES" --quantization $scheme -o out <empty >rec 2>err; echo $? >status; } &&
		test "$(cat status)" = 2 &&
		test_grep "mlc-quant cannot write $scheme weights; the schemes it writes: q0f16, .*q4f16_1" err &&
		test_must_be_empty rec && ! test -e out
	'
done

test_expect_success 'mlc-cfg --model DIR | mlc-quant: the config record names the model' '
	mlc-cfg -q --model "$STORIES" --quantization q4f16_1 -o out <empty >cfg.mp &&
	test "$(mlc-dump -t config cfg.mp | $PYTHON -c "import json,sys; print(json.load(sys.stdin)[\"model\"])")" = \
		"$(cd "$STORIES" && pwd -P)" &&
	mlc-quant -q <cfg.mp >w.mp &&
	test -f out/tensor-cache.json &&
	test "$(mlc-dump -t weights w.mp | $PYTHON -c "import json,sys; print(json.load(sys.stdin)[\"source\"])")" = \
		"$(cd "$STORIES" && pwd -P)"
'

test_done
