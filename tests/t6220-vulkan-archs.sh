#!/bin/sh
# The Vulkan executor against the CPU reference kernels, logits of the same
# library compared: random-weight llama, mistral (sliding window and
# attention sink, past the window and around the cache), qwen2 (q/k/v
# biases) and qwen3 (q/k norms) models, prefill and decode within 1e-3 of
# the CPU relative to each step's largest logit; batched decode equal to
# one-by-one decode; every quantization scheme with a kernel; weights bound
# in slices, uploaded through a staging buffer, unfused plans and every -O
# level.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

# ids N SEED: N token ids (3..511), reproducible
ids () { $PYTHON -c "import random; r = random.Random($2); print(','.join(str(r.randrange(3, 512)) for _ in range($1)))"; }

# vulkan_model SRC SCHEME OUT [mlc-cfg options]: through mlc-lower, then a
# vulkan library OUT.mp
vulkan_model () {
	src=$1 scheme=$2 out=$3
	shift 3
	mlc-fetch -q "$src" <"$TRASH/.empty" | mlc-cfg -q --quantization "$scheme" -o "$out" "$@" |
	mlc-quant -q | mlc-lower -q >"$out.lower.mp" &&
	mlc-emit -q --target vulkan <"$out.lower.mp" >"$out.mp"
}

# same NAME IDS PREFILL TOL [STREAM]: vulkan and cpu logits of the library in
# NAME.mp (or STREAM) agree within TOL relative to each step's largest logit
# (the CPU's reference kernels: MLC_KERNELS)
same () {
	stream=${5:-$1.mp}
	mlc-check -q --score "$2" --prefill $3 --logits-out $1.vk <$stream &&
	MLC_KERNELS=reference mlc-check -q --device cpu --score "$2" --prefill $3 --logits-out $1.cpu <$stream &&
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

for arch in llama qwen2 qwen3 mistral; do
	test_expect_success "$arch: prefill and decode logits on vulkan match the CPU reference" "
		mkmodel --arch $arch --dtype bf16 --tokenizer \"\$STORIES\" -o src-$arch >/dev/null &&
		vulkan_model src-$arch q0f32 $arch --prefill-chunk-size 16 --max-batch-size 4 &&
		same $arch \$(ids 60 1) 20 1e-3
	"
done

test_expect_success 'batched decode gives exactly the logits of one-by-one decode' '
	a=$(ids 30 5) && b=$(ids 30 6) && c=$(ids 30 7) &&
	for arch in llama qwen3 mistral; do
		mlc-check -q --score "$a;$b;$c" --prefill 9 --logits-out batch.bin <$arch.mp &&
		: >single.bin &&
		for s in "$a" "$b" "$c"; do
			mlc-check -q --score "$s" --prefill 9 --logits-out one.bin <$arch.mp &&
			cat one.bin >>single.bin || return 1
		done &&
		cmp batch.bin single.bin || return 1
	done
'

# Every way of storing weights the kernels read, on the real stories260K
# model (its intermediate size, 172, leaves a partial quantization group):
# 4 and 3 bits, NK and KN (transposed) layouts, float16, bfloat16 and
# float32 scales, unquantized float16 and bfloat16 (q4f16_0, q4bf16_1 and
# q4f16_2 combine these). Float16 schemes: the default -O2 kernels skip
# rounding each weight to float16.
for s in q4f16_1 q4f32_1 q4bf16_0 q3f16_1 q3f16_0 q0f16 q0bf16; do
	test_expect_success "$s: vulkan logits match the CPU's" "
		vulkan_model \"\$STORIES\" $s $s &&
		same $s \$(ids 26 2) 20 2e-3
	"
done

test_expect_success 'q4f16_1 at -O0 and -O1 (exact dequantization) and -O3 (wide tiles)' '
	for level in 0 1 3; do
		mlc-emit -q -O$level --target vulkan -o q4f16_1/O$level.tar <q4f16_1.lower.mp >O$level.mp &&
		same O$level "$(ids 26 2)" 20 $(test $level = 3 && echo 2e-3 || echo 1e-4) O$level.mp || return 1
	done
'

test_expect_success 'weights bound in slices and uploaded through staging give the same logits' '
	mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out whole.bin <q4f16_1.mp &&
	MLC_VK_WEIGHT_BINDING_LIMIT=3000 mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out sliced.bin <q4f16_1.mp &&
	cmp whole.bin sliced.bin &&
	MLC_VK_WEIGHT_BINDING_LIMIT=1000 mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out sliced.bin <q0f16.mp &&
	mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out whole.bin <q0f16.mp &&
	cmp whole.bin sliced.bin &&
	MLC_VK_STAGING=1 mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out staged.bin <q4f16_1.mp &&
	mlc-check -q --score "$(ids 26 2)" --prefill 20 --logits-out whole.bin <q4f16_1.mp &&
	cmp whole.bin staged.bin
'

test_expect_success 'an unfused plan (mlc-lower -O0) runs its dequantize, add and silu_mul kernels' '
	mlc-fetch -q "$STORIES" <.empty | mlc-cfg -q --quantization q4f16_1 -o unfused | mlc-quant -q |
		mlc-lower -q -O0 >unfused.lower.mp &&
	mlc-emit -q -O1 --target vulkan -o unfused.tar <unfused.lower.mp >unfused.mp &&
	tar tf unfused.tar >kernels &&
	test_grep "kernels/dequantize-0.spv" kernels && test_grep "kernels/silu_mul-0.spv" kernels &&
	same unfused "$(ids 26 2)" 20 1e-5 unfused.mp
'

test_done
