#!/bin/sh
# The Vulkan executor on Gemma 2, Gemma 3 (text) and Phi-3 against the CPU
# reference kernels and PyTorch: random-weight models shaped so that
# Gemma 2 soft-caps its attention scores and logits and alternates
# sliding (8 tokens) and global layers, Gemma 3 adds q/k norms, local and
# global rotary bases (linear scaling on the global ones) over 6 layers and
# concatenates separate q, k and v, and Phi-3's LongRoPE switches from its
# short to its long factors past an original context of 16 (in prefill,
# and between decode steps, per sequence in one batch); Phi-3 with a
# partial rotary factor. Prefill and decode logits within 1e-3 of the CPU
# relative to each step's largest logit (2e-3 for q4f16_1); unfused plans
# (gelu_tanh_mul and softcap launches of their own) and every -O level;
# SPIR-V that spirv-val accepts, emitted reproducibly; and op-by-op
# bisection that finds no divergent op.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

# ids N SEED: N token ids (3..511), reproducible
ids () { $PYTHON -c "import random; r = random.Random($2); print(','.join(str(r.randrange(3, 512)) for _ in range($1)))"; }

# vulkan_model SRC SCHEME OUT [mlc-cfg options]: through mlc-lower (with
# --overrides $OVERRIDES when set), then a vulkan library OUT.mp
vulkan_model () {
	src=$1 scheme=$2 out=$3
	shift 3
	mlc-fetch -q "$src" <"$TRASH/.empty" | mlc-cfg -q --quantization "$scheme" -o "$out" --max-batch-size 4 "$@" |
	mlc-quant -q | mlc-lower -q ${OVERRIDES:+--overrides "$OVERRIDES"} >"$out.lower.mp" &&
	mlc-emit -q --target vulkan <"$out.lower.mp" >"$out.mp"
}

# compare NAME A B TOL: float32 logits in files A and B ([rows, 512]) agree
# within TOL relative to each row's largest logit
compare () {
	$PYTHON - "$@" <<-PY
	import sys, numpy as np
	name, a, b, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
	x = np.fromfile(a, dtype="<f4").reshape(-1, 512)
	y = np.fromfile(b, dtype="<f4").reshape(-1, 512)
	assert x.shape == y.shape and len(x) > 1, (x.shape, y.shape)
	rel = np.abs(x - y).max(axis=1) / np.abs(y).max(axis=1)
	print("%s: %d rows, worst relative difference %.2e" % (name, len(rel), rel.max()))
	assert rel.max() <= tol, rel
	PY
}

# same NAME IDS PREFILL TOL [STREAM]: vulkan and cpu logits of the library
# in NAME.mp (or STREAM) agree within TOL (the CPU's reference kernels)
same () {
	stream=${5:-$1.mp}
	mlc-check -q --score "$2" --prefill $3 --logits-out $1.vk <$stream &&
	MLC_KERNELS=reference mlc-check -q --device cpu --score "$2" --prefill $3 --logits-out $1.cpu <$stream &&
	compare $1 $1.vk $1.cpu $4
}

# torch NAME SRC IDS PREFILL [NAME SRC IDS PREFILL...]: PyTorch's float32
# logits of SRC for IDS, the rows from the prefill's last on, into
# NAME.torch (one process: torch takes seconds to load). Gemma's norm
# weights are taken as the tensor cache keeps them (1 + w, rounded to
# bfloat16 as MLC's conversion stores float32 vectors).
torch () {
	$PYTHON - "$SRC_DIR/tests/reference" "$@" <<-PY
	import json, sys, numpy as np, torch
	sys.path.insert(0, sys.argv[1])
	import hf_forward, gemma_phi3
	args = sys.argv[2:]
	for at in range(0, len(args), 4):
	    name, src, ids, prefill = args[at], args[at + 1], [int(t) for t in args[at + 2].split(",")], int(args[at + 3])
	    c = json.load(open(src + "/config.json"))
	    w = hf_forward.load_weights(src)
	    if c["model_type"].startswith("gemma"):
	        for k in w:
	            if "norm" in k:
	                w[k] = (1.0 + w[k]).to(torch.bfloat16).to(torch.float32) - 1.0
	    with torch.no_grad():
	        logits = gemma_phi3.ARCHITECTURES[c["model_type"]](c, w, ids)
	    logits[prefill - 1:].numpy().astype("<f4").tofile(name + ".torch")
	PY
}

test_expect_success 'set up: gemma2, gemma3_text, phi3 and phi3 with half its dimensions rotating; their PyTorch logits' '
	for a in gemma2 gemma3_text phi3; do
		mkmodel --arch $a --dtype bf16 --tokenizer "$STORIES" -o src-$a >/dev/null || return 1
	done &&
	cp -r src-phi3 src-phi3-partial &&
	$PYTHON - <<-PY &&
	import json
	p = "src-phi3-partial/config.json"
	c = json.load(open(p))
	c["partial_rotary_factor"] = 0.5
	del c["rope_scaling"]
	json.dump(c, open(p, "w"), indent=2, sort_keys=True)
	PY
	torch gemma2 src-gemma2 $(ids 40 1) 20 gemma3 src-gemma3_text $(ids 40 2) 20 \
		phi3-short src-phi3 $(ids 16 3) 10 phi3-long src-phi3 $(ids 40 4) 20 partial src-phi3-partial $(ids 40 7) 20
'

# MLC's Gemma 2 takes its sliding window (8 here) for the context window
# (and the prefill chunk): a larger one (mlc-lower --overrides) lets the
# global layers see past it.
GEMMA2="context_window_size=64;prefill_chunk_size=32"
test_expect_success 'gemma2: prefill and decode past the window, soft-capped, match the CPU and PyTorch' '
	OVERRIDES=$GEMMA2 vulkan_model src-gemma2 q0f32 gemma2 &&
	mlc-dump gemma2.lower.mp >lowered.json &&
	grep -q "\"local_window\":8" lowered.json && grep -q "\"softcap\":5" lowered.json &&
	grep -q "\"op\":\"softcap\"" lowered.json && grep -q "\"epilogue\":\"gelu_tanh_mul\"" lowered.json &&
	same gemma2 $(ids 40 1) 20 1e-3 &&
	compare gemma2-torch gemma2.vk gemma2.torch 1e-4
'

test_expect_success 'gemma3_text: local and global rotary bases, q/k norms, concatenated q/k/v match the CPU and PyTorch' '
	vulkan_model src-gemma3_text q0f32 gemma3 --prefill-chunk-size 32 &&
	mlc-dump gemma3.lower.mp >lowered.json &&
	grep -q "\"op\":\"concat\"" lowered.json && grep -q "\"rope_type\":\"linear\"" lowered.json &&
	same gemma3 $(ids 40 2) 20 1e-3 &&
	compare gemma3-torch gemma3.vk gemma3.torch 1e-4
'

# The tensor cache keeps Gemma's norms as 1 + w, so lowered plans carry a
# weight offset of 0; one written by hand with offset 1 (as the reference
# engine's in-process plans have) runs the norms' and the q/k norms' offset.
test_expect_success 'gemma3_text: norms with a weight offset of 1 (rms_norm, add_rms_norm, head_norm)' '
	mlc-dump gemma3.lower.mp | $PYTHON -c "
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r.get(\"type\") == \"module\":
        for f in r[\"functions\"]:
            for o in f[\"ops\"]:
                if o[\"op\"] in (\"rms_norm\", \"add_rms_norm\", \"head_norm\"):
                    o[\"weight_offset\"] = 1.0
    print(json.dumps(r))
" | mlc-dump -P >offset.lower.mp &&
	mlc-emit -q --target vulkan -o offset.tar <offset.lower.mp >offset.mp &&
	same offset $(ids 30 8) 12 1e-3 offset.mp &&
	mlc-check -q --score "$(ids 30 8)" --prefill 12 --logits-out plain.vk <gemma3.mp &&
	! compare offset-differs offset.vk plain.vk 0.1
'

# Chunks of 16: the prefill of 10 takes the short factors, decode switches
# to the long ones after position 15; a prefill of 20 in one chunk of 32
# takes the long ones throughout, as PyTorch does for the whole sequence.
test_expect_success 'phi3: LongRoPE short factors, then long ones from the 17th token, match the CPU' '
	vulkan_model src-phi3 q0f32 phi3 --prefill-chunk-size 16 &&
	same phi3 $(ids 40 3) 10 1e-3 &&
	head -c $((7 * 512 * 4)) phi3.vk >phi3-short.vk &&
	compare phi3-short phi3-short.vk phi3-short.torch 1e-4
'

test_expect_success 'phi3: a prefill past the original context takes the long factors, as PyTorch does' '
	vulkan_model src-phi3 q0f32 phi3-long --prefill-chunk-size 32 &&
	same phi3-long $(ids 40 4) 20 1e-3 &&
	compare phi3-long-torch phi3-long.vk phi3-long.torch 1e-4
'

# One batch, two positions: the short sequence decodes positions 4..12
# with the short factors while the long one decodes 20..28 with the long
# ones; each must get what it gets alone.
test_expect_success 'phi3: factors chosen per sequence within one decode batch' '
	a=$(ids 13 5) && b=$(ids 29 6) &&
	mlc-check -q --score "$a;$b" --prefill 4 --logits-out batch.bin <phi3.mp &&
	mlc-check -q --score "$a" --prefill 4 --logits-out one.bin <phi3.mp &&
	mlc-check -q --score "$b" --prefill 20 --logits-out two.bin <phi3.mp &&
	cat one.bin two.bin >single.bin && cmp batch.bin single.bin &&
	MLC_KERNELS=reference mlc-check -q --device cpu --score "$a;$b" --prefill 4 --logits-out batch.cpu <phi3.mp &&
	compare phi3-batch batch.bin batch.cpu 1e-3
'

test_expect_success 'phi3 with a partial rotary factor: half of each head rotates' '
	vulkan_model src-phi3-partial q0f32 partial --prefill-chunk-size 32 &&
	mlc-dump partial.lower.mp | grep -q "\"rotary_dim\":8" &&
	same partial $(ids 40 7) 20 1e-3 &&
	compare partial-torch partial.vk partial.torch 1e-4
'

test_expect_success 'q4f16_1: all three match the CPU' '
	OVERRIDES=$GEMMA2 vulkan_model src-gemma2 q4f16_1 gemma2-q4 &&
	same gemma2-q4 $(ids 40 1) 20 2e-3 &&
	vulkan_model src-gemma3_text q4f16_1 gemma3-q4 --prefill-chunk-size 32 &&
	same gemma3-q4 $(ids 40 2) 20 2e-3 &&
	vulkan_model src-phi3 q4f16_1 phi3-q4 --prefill-chunk-size 16 &&
	same phi3-q4 $(ids 40 3) 10 2e-3
'

test_expect_success 'unfused plans: gelu_tanh_mul, softcap and add launches of their own' '
	mlc-fetch -q src-gemma2 <.empty | mlc-cfg -q --quantization q4f16_1 -o unfused --prefill-chunk-size 32 |
		mlc-quant -q | mlc-lower -q -O0 --overrides "$GEMMA2" >unfused.lower.mp &&
	mlc-dump unfused.lower.mp | grep -q "\"op\":\"gelu_tanh_mul\"" &&
	mlc-emit -q -O1 --target vulkan -o unfused.tar <unfused.lower.mp >unfused.mp &&
	tar tf unfused.tar >kernels &&
	test_grep "kernels/silu_mul-0.spv" kernels && test_grep "kernels/softcap-0.spv" kernels &&
	same unfused $(ids 40 1) 20 1e-4 unfused.mp
'

# (-O1 is the unfused plan's above; the CPU's logits are those of the -O2
# library, from the same module)
test_expect_success 'the other -O levels: -O0 exact, -O3 wide tiles' '
	for level in 0 3; do
		mlc-emit -q -O$level --target vulkan -o gemma3-q4/O$level.tar <gemma3-q4.lower.mp >O$level.mp &&
		mlc-check -q --score "$(ids 40 2)" --prefill 20 --logits-out O$level.vk <O$level.mp &&
		compare O$level O$level.vk gemma3-q4.cpu $(test $level = 3 && echo 2e-3 || echo 1e-4) || return 1
	done
'

test_expect_success 'every kernel passes spirv-val; emitting again gives the same bytes' '
	for lib in gemma2/gemma2-vulkan.tar gemma3/gemma3-vulkan.tar phi3/phi3-vulkan.tar partial/partial-vulkan.tar \
		unfused.tar gemma3-q4/O0.tar gemma3-q4/O3.tar; do
		rm -rf k && mkdir k && (cd k && tar xf "../$lib") &&
		for f in k/kernels/*.spv; do spirv-val --target-env vulkan1.1 $f || return 1; done || return 1
	done &&
	mlc-emit -q --target vulkan -o again.tar <gemma3.lower.mp >/dev/null &&
	cmp again.tar gemma3/gemma3-vulkan.tar &&
	mlc-emit -q -O0 --target vulkan -o again.tar <gemma3-q4.lower.mp >/dev/null &&
	cmp again.tar gemma3-q4/O0.tar
'

# The stories tokenizer gives this prompt 23 tokens: past Gemma's window,
# and past Phi-3's original context (its long factors) in one chunk.
PROMPT="Once upon a time there was a little girl named Lily who loved to play in the park"
test_expect_success 'bisection: every op of the three agrees with the CPU' '
	for m in gemma2 gemma3 phi3-long gemma2-q4; do
		mlc-check -q --raw --prompt "$PROMPT" --bisect <$m.mp >out &&
		cat out &&
		test_grep "^bisect: all [0-9]* op outputs of embed, prefill (2[0-9] tokens) and decode agree within 0.001" out ||
		return 1
	done
'

test_done
