#!/bin/sh
# mlc-check --bisect: the first prompt's prefill and one decode step run op
# by op on the Vulkan device and on the CPU reference kernels from the same
# inputs. A sound library agrees everywhere; when one op's output is
# deliberately damaged on the device (MLC_VK_PERTURB names the value it
# writes), bisection names that op, its layer and its tensor.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up stories260K q4f16_1 for vulkan, exact and fast kernels' '
	mlc-fetch -q "$STORIES" <.empty | mlc-cfg -q --quantization q4f16_1 -o m | mlc-quant -q | mlc-lower -q >m.lower.mp &&
	mlc-emit -q -O1 --target vulkan -o exact.tar <m.lower.mp >exact.mp &&
	mlc-emit -q --target vulkan <m.lower.mp >fast.mp
'

test_expect_success 'a sound library: every op agrees, exit status 0' '
	mlc-check -q --raw --prompt "Once upon a time" --bisect <exact.mp >out &&
	test_grep "^bisect: all [0-9]* op outputs of embed, prefill (5 tokens) and decode agree within 0.001" out
'

test_expect_success 'the fast kernels agree within the default tolerance too, not within 1e-6' '
	mlc-check -q --raw --prompt "Once upon a time" --bisect <fast.mp >out &&
	test_grep "agree within 0.001" out &&
	test_must_fail mlc-check -q --raw --prompt "Once upon a time" --bisect=1e-6 <fast.mp >out &&
	test_grep "^bisect: .* op [0-9]* (\(embed\|matmul\)).* rel error .* (tolerance 1e-06)" out
'

test_expect_success 'damaged attention in layer 2: named with its layer and tensor' '
	MLC_VK_PERTURB=L2.attention test_must_fail mlc-check -q --raw --prompt "Once upon a time" --bisect <exact.mp >out &&
	test_grep "^bisect: prefill op [0-9]* (attention), layer 2, tensor L2.attention: max abs error [0-9.e+-]*, rel error [0-9.e+-]* (tolerance 0.001)$" out
'

test_expect_success 'damaged gate/up projection in layer 3: the matmul is named' '
	MLC_VK_PERTURB=L3.gated test_must_fail mlc-check -q --raw --prompt "Once upon a time" --bisect <exact.mp >out &&
	test_grep "^bisect: prefill op [0-9]* (matmul), layer 3, tensor L3.gated:" out
'

test_expect_success 'damaged logits: the last op of prefill, outside any layer' '
	MLC_VK_PERTURB=logits test_must_fail mlc-check -q --raw --prompt "Once upon a time" --bisect <exact.mp >out &&
	test_grep "^bisect: prefill op [0-9]* (matmul), tensor logits:" out
'

test_expect_success 'bisection needs the device: on the CPU it is refused' '
	test_must_fail mlc-check -q --device cpu --raw --prompt Once --bisect <exact.mp >out 2>err &&
	test_grep "\-\-bisect compares a Vulkan device with the CPU" err
'

test_done
