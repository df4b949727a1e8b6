#!/bin/sh
# FP8 weight-and-activation models on Vulkan: the matmul kernel reads
# e4m3 and e5m2 weights, rounds its inputs to FP8 (divided by the
# activation scale calibration measured) and multiplies the sums by the
# activation and weight scales, as the CPU kernels do. Logits are compared
# with the CPU's reference kernels; calibration builds stay on the CPU.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

DATA=$FIXTURES/calibration/sharegpt-stories.json

# ids N SEED: N token ids (3..511), reproducible
ids () { $PYTHON -c "import random; r = random.Random($2); print(','.join(str(r.randrange(3, 512)) for _ in range($1)))"; }

# same NAME IDS PREFILL TOL STREAM: vulkan and cpu logits of the library in
# STREAM agree within TOL relative to each step's largest logit
same () {
	mlc-check -q --score "$2" --prefill $3 --logits-out $1.vk <$5 &&
	MLC_KERNELS=reference mlc-check -q --device cpu --score "$2" --prefill $3 --logits-out $1.cpu <$5 &&
	$PYTHON - $1 $4 <<-PY
	import sys, numpy as np
	name, tol = sys.argv[1], float(sys.argv[2])
	vk = np.fromfile(name + ".vk", dtype="<f4").reshape(-1, 512)
	cpu = np.fromfile(name + ".cpu", dtype="<f4").reshape(-1, 512)
	assert vk.shape == cpu.shape and len(vk) > 1, (vk.shape, cpu.shape)
	rel = np.abs(vk - cpu).max(axis=1) / np.abs(cpu).max(axis=1)
	print("%s: %d steps, worst relative difference %.2e" % (name, len(rel), rel.max()))
	assert rel.max() <= tol, rel
	PY
}

test_expect_success 'setup: stories260K calibrated, its e4m3 inference build lowered; an e5m2 build' '
	build_model "$STORIES" e4m3_e4m3_f16_max_calibrate e4 &&
	mlc-check -q --calibrate="$DATA" --num-calibration-samples 4 <e4.mp >cal.mp &&
	mlc-cfg -q --quantization e4m3_e4m3_f16 -o e4 <e4.1-fetch.mp | mlc-quant -q | mlc-lower -q >e4.lower.mp &&
	mlc-emit -q --target vulkan <e4.lower.mp >e4.vk.mp &&
	mlc-fetch -q "$STORIES" <.empty | mlc-cfg -q --quantization e5m2_e5m2_f16 -o e5 | mlc-quant -q |
		mlc-lower -q >e5.lower.mp &&
	mlc-emit -q --target vulkan <e5.lower.mp >e5.vk.mp
'

# Both round the same float32 inputs to FP8 the same way: the logits
# differ by float32 summation order alone (4e-7 measured); one activation
# rounded to another FP8 value would show as about 1e-2. stories260K reads
# its 64-wide inputs sixteen FP8 weights a texel, its 172-wide ones four.
test_expect_success 'e4m3 with calibrated scales: vulkan logits match the CPU reference' '
	same e4 "$(ids 26 2)" 20 1e-4 e4.vk.mp
'

test_expect_success 'e5m2 (no scales): vulkan logits match the CPU reference' '
	same e5 "$(ids 26 2)" 20 1e-4 e5.vk.mp
'

test_expect_success 'e4m3 at -O0, -O1 and -O3, and with its weights bound in slices' '
	for level in 0 1 3; do
		mlc-emit -q -O$level --target vulkan -o e4/O$level.tar <e4.lower.mp >O$level.mp &&
		same O$level "$(ids 26 2)" 20 1e-4 O$level.mp || return 1
	done &&
	mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out whole.bin <e4.vk.mp &&
	MLC_VK_WEIGHT_BINDING_LIMIT=3000 mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out sliced.bin <e4.vk.mp &&
	cmp whole.bin sliced.bin
'

# Scales a thousand times too large put the inputs among e4m3's subnormals,
# a thousand times too small saturate them: the kernel rounds both as the
# CPU does
test_expect_success 'e4m3 inputs rounded to subnormals and saturated: vulkan matches the CPU' '
	mlc-dump --type calibration cal.mp | tail -n 1 >cal.json &&
	for f in 1000 0.001; do
		rm -rf w$f && cp -a e4 w$f &&
		tcupdate w$f $($PYTHON -c "import json; r = json.load(open(\"cal.json\"))
print(\" \".join(\"%s=%.9g\" % (l[\"name\"], l[\"scale\"] * $f) for l in r[\"layers\"]))") >/dev/null &&
		mlc-check -q --library e4/e4-vulkan.tar --model w$f --score "$(ids 26 2)" --prefill 20 --logits-out w$f.vk <.empty &&
		MLC_KERNELS=reference mlc-check -q --device cpu --library e4/e4-vulkan.tar --model w$f --score "$(ids 26 2)" \
			--prefill 20 --logits-out w$f.cpu <.empty &&
		$PYTHON -c "import numpy as np
vk, cpu = (np.fromfile(\"w$f.\" + d, dtype=\"<f4\").reshape(-1, 512) for d in (\"vk\", \"cpu\"))
assert vk.shape == cpu.shape and len(vk) > 1
rel = np.abs(vk - cpu).max(axis=1) / np.abs(cpu).max(axis=1)
print(\"x$f\", rel.max()); assert rel.max() <= 1e-4, rel" || return 1
	done
'

test_expect_success 'the calibrated model passes every criterion on vulkan, KL bounded as on the CPU' '
	mlc-check --reference "$STORIES" --max-kl 0.05 --min-top1 0.75 <e4.vk.mp >chk.mp 2>err &&
	test_grep "3 of 3 prompts pass" err &&
	test_grep "llvmpipe\|vulkan" err &&
	test "$(record_field chk.mp check "r[\"pass\"] and r[\"reference\"][\"kl_mean\"] < 0.05")" = True
'

test_expect_success 'a calibration build is refused for vulkan in one line, and so are placeholders' '
	test_must_fail mlc-emit -q --target vulkan <e4.4-lower.mp >rec.mp 2>err &&
	test_line_count = 1 err &&
	test_grep "e4m3_e4m3_f16_max_calibrate is a calibration build, which measures its activations on the CPU" err &&
	mlc-fetch -q "$STORIES" <.empty | mlc-cfg -q --quantization e4m3_e4m3_f16 -o ph | mlc-quant -q | mlc-lower -q |
		mlc-emit -q --target vulkan >ph.mp &&
	test_must_fail mlc-check <ph.mp >rec.mp 2>err &&
	test_line_count = 1 err &&
	test_grep "q_calibration_scale is uncalibrated" err
'

test_done
