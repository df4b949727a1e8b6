#!/bin/sh
# The PyTorch float32 references for Gemma 2, Gemma 3 and Phi-3
# (tests/reference/gemma_phi3.py, through hf_forward.py) checked on their
# own, before an engine is compared with them: hand-computed properties of
# soft-capping, the sliding-window receptive field, local/global rotary
# bases and linear scaling, LongRoPE's choice of factors and attention
# factor, and Phi-3 without scaling against the llama reference on the same
# weights split apart.
. "$(dirname "$0")/lib.sh"

test_expect_success 'set up: bfloat16 gemma2, gemma3_text and phi3 fixtures' '
	for a in gemma2 gemma3_text phi3; do
		mkmodel --arch $a --dtype bf16 -o $a >/dev/null || return 1
	done
'

test_expect_success 'every property of the three references holds' '
	$PYTHON "$SRC_DIR/tests/reference/check_gemma_phi3.py" gemma2 gemma3_text phi3 work >out &&
	cat out &&
	test_lacks FAILED out &&
	test "$(grep -c "^ok: " out)" = 20
'

test_expect_success 'hf_forward.py writes [tokens, vocab] float32 logits for each of them' '
	for a in gemma2 gemma3_text phi3; do
		$PYTHON "$SRC_DIR/tests/reference/hf_forward.py" $a 1,2,3,4,5 $a.bin &&
		test $(wc -c <$a.bin) = $((5 * 512 * 4)) || return 1
	done
'

test_done
