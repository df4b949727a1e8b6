#!/bin/sh
# The engine's logits against a PyTorch float32 forward pass written from
# the architectures' published definitions (tests/reference/hf_forward.py),
# for random-weight llama, mistral, qwen2 and qwen3 models (and llama with
# Llama-3 rope scaling): the prefill of the first 20 tokens (two chunks of
# 16 at most) and 28 single-token decode steps must agree within 1e-4 on
# the reference kernels, and within 1e-3 on the fast ones (the best this
# CPU runs, and the portable generic set), relative to the largest logit of
# each step. Batched decode must give exactly the logits of one-by-one
# decode, on the fast kernels too.
#
# Fixtures are bfloat16, so MLC's float32 storage (bf16 on disk) loses
# nothing and both sides see the same weights.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

# ids N SEED: N token ids (3..511), reproducible
ids () { $PYTHON -c "import random; r = random.Random($2); print(','.join(str(r.randrange(3, 512)) for _ in range($1)))"; }

# ours ARCH_DIR IDS PREFILL KERNELS OUT: the engine's logits
ours () {
	mlc-check -q --library $1/$1-cpu.tar --model $1 --kernels $4 --score "$2" --prefill $3 --logits-out $5 </dev/null
}

# compare ARCH_DIR IDS PREFILL [--sink N]: engine logits vs the reference
compare () {
	dir=$1 seq=$2 pre=$3
	shift 3
	ours $dir "$seq" $pre reference $dir.ours &&
	ours $dir "$seq" $pre auto $dir.fast &&
	ours $dir "$seq" $pre generic $dir.generic &&
	$PYTHON "$SRC_DIR/tests/reference/hf_forward.py" "$@" src-$dir "$seq" $dir.ref &&
	$PYTHON - $dir $pre "$seq" <<-PY
	import sys, numpy as np
	d, pre, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
	ref = np.fromfile(d + ".ref", dtype="<f4").reshape(len(ids), 512)[pre - 1:]
	for kind, bound in (("ours", 1e-4), ("fast", 1e-3), ("generic", 1e-3)):
	    ours = np.fromfile(d + "." + kind, dtype="<f4").reshape(-1, 512)
	    assert ours.shape == ref.shape, (ours.shape, ref.shape)
	    rel = np.abs(ours - ref).max(axis=1) / np.abs(ref).max(axis=1)
	    print("%s, %s kernels: %d steps, worst relative difference %.2e" % (d, kind, len(rel), rel.max()))
	    assert rel.max() <= bound, rel
	    assert (ours.argmax(axis=1) == ref.argmax(axis=1)).all()
	PY
}

setup () {
	mkmodel --arch $1 --dtype bf16 --tokenizer "$STORIES" ${3:-} -o src-$2 >/dev/null &&
	build_model src-$2 q0f32 $2 --prefill-chunk-size 16 --max-batch-size 4 ${4:-}
}

for arch in llama qwen2 qwen3; do
	test_expect_success "$arch: prefill and decode logits match PyTorch" "
		setup $arch $arch &&
		compare $arch \$(ids 48 1) 20
	"
done

test_expect_success 'llama with Llama-3 rope scaling: logits match PyTorch' '
	setup llama llama3 "--rope-scaling llama3" &&
	test_grep "\"rope_type\": \"llama3\"" llama3/mlc-chat-config.json &&
	compare llama3 $(ids 120 2) 20
'

test_expect_success 'mistral: sliding window and attention sink, past the window and around the cache' '
	setup mistral mistral &&
	test "$($PYTHON -c "import json; c = json.load(open(\"mistral/mlc-chat-config.json\")); print(c[\"sliding_window_size\"], c[\"attention_sink_size\"])")" = "32 4" &&
	compare mistral $(ids 90 3) 20 --sink 4
'

test_expect_success 'mistral without a sink matches the HuggingFace definition' '
	setup mistral mistral0 "" "--attention-sink-size 0" &&
	compare mistral0 $(ids 90 4) 20
'

test_expect_success 'batched decode gives exactly the logits of one-by-one decode, on every kernel set' '
	a=$(ids 30 5) && b=$(ids 30 6) && c=$(ids 30 7) &&
	for arch in llama qwen3 mistral; do
		for kernels in reference generic auto; do
			ours $arch "$a;$b;$c" 9 $kernels batch.bin &&
			: >single.bin &&
			for s in "$a" "$b" "$c"; do
				ours $arch "$s" 9 $kernels one.bin &&
				cat one.bin >>single.bin || return 1
			done &&
			cmp batch.bin single.bin || return 1
		done
	done
'

test_done
