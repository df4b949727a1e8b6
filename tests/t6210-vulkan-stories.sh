#!/bin/sh
# The real stories260K model through the whole pipe with --target vulkan,
# run on the Vulkan device (lavapipe here): q0f32 tells llama2.c's greedy
# story token for token; q4f16_1 and q4f32_1 pass every criterion, with KL
# divergence from the unquantized model within 0.01 nats of what the CPU
# engine measures on the same library. -O1's kernels dequantize exactly as
# the CPU's reference kernels do, so even sampled answers are the CPU's.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

# build_vulkan SCHEME OUT [mlc-emit options]: the pipe ending in mlc-emit --target vulkan
build_vulkan () {
	scheme=$1 out=$2
	shift 2
	mlc-fetch -q "$STORIES" <"$TRASH/.empty" |
	mlc-cfg -q --quantization "$scheme" -o "$out" |
	mlc-quant -q | mlc-lower -q >"$out.lower.mp" &&
	mlc-emit -q --target vulkan "$@" <"$out.lower.mp" >"$out.mp"
}

test_expect_success 'set up q0f32, q4f16_1 and q4f32_1 for vulkan' '
	build_vulkan q0f32 q0 &&
	build_vulkan q4f16_1 q4 &&
	build_vulkan q4f32_1 q4f32 &&
	test -f q0/q0-vulkan.tar
'

test_expect_success 'q0f32 on vulkan: greedy from BOS gives the 60 tokens of the reference story' '
	mlc-check -q --raw --prompt "" --greedy --max-tokens 60 <q0.mp >check.mp &&
	ids=$(record_field check.mp check "\",\".join(map(str, r[\"prompts\"][0][\"prompt_ids\"] + r[\"prompts\"][0][\"ids\"]))") &&
	test "$ids" = "$STORIES_IDS" &&
	record_field check.mp check "r[\"prompts\"][0][\"text\"]" >story &&
	test_grep "^Once upon a time, there was a little girl named Lily. She loved to play outside in the park." story
'

# kl NAME DEVICE: mean KL against the unquantized model, every criterion
# passing (on the CPU, its reference kernels: MLC_KERNELS)
kl () {
	MLC_KERNELS=reference mlc-check -q --device $2 --greedy --raw --reference "$STORIES" <$1.mp >$1-$2.mp &&
	record_field $1-$2.mp check "r[\"pass\"] and all(all(p[\"criteria\"].values()) for p in r[\"prompts\"]) and r[\"reference\"][\"kl_mean\"]"
}

for s in q4 q4f32; do
	test_expect_success "$s on vulkan: every criterion passes; KL within 0.01 nats of the CPU engine's" "
		a=\$(kl $s vulkan) && b=\$(kl $s cpu) &&
		echo \"KL vulkan \$a cpu \$b\" &&
		\$PYTHON -c \"import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(not (0 < a < 0.4 and abs(a - b) <= 0.01))\" \"\$a\" \"\$b\"
	"
done

test_expect_success 'q4f16_1 at -O1 samples exactly what the CPU engine samples' '
	mlc-emit -q -O1 --target vulkan -o q4/exact.tar <q4.lower.mp >exact.mp &&
	mlc-check -q --raw --prompt "Once upon a time" --seed 3 --max-tokens 40 <exact.mp >s-vk.mp &&
	MLC_KERNELS=reference mlc-check -q --device cpu --raw --prompt "Once upon a time" --seed 3 --max-tokens 40 <exact.mp >s-cpu.mp &&
	record_field s-vk.mp check "r[\"prompts\"][0][\"ids\"]" >ids-vk &&
	record_field s-cpu.mp check "r[\"prompts\"][0][\"ids\"]" >ids-cpu &&
	test_cmp ids-cpu ids-vk
'

test_expect_success '--profile prints the throughput and a table of kernel times' '
	mlc-check -q --profile --raw --prompt "Once upon a time" --greedy --max-tokens 8 --generate <q4.mp >out 2>err &&
	test_grep "^profile: .*(vulkan:0)" err &&
	test_grep "^  decode  *[0-9]* calls  *[0-9]* tokens .* tokens/s" err &&
	test_grep "^  matmul-[0-9]*  *matmul  *[0-9]* " err &&
	test_grep "^  all kernels" err
'

test_done
