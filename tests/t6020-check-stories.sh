#!/bin/sh
# mlc-check on the real stories260K model: the q0f32 pipeline reproduces
# llama2.c's greedy story token for token; q4f16_1 and q4f32_1 pass every
# criterion, and their distance from the unquantized model stays in bounds.
#
# Bounds, from measurement (mean KL over the generated tokens of the three
# built-in raw prompts, 64 tokens each): q4f16_1 0.17-0.24 nats with 67-81%
# top-1 agreement, q4f32_1 0.14-0.24 nats with 69-78%; q0f32 (bf16-rounded
# weights) 0.0001 nats with 100%. The tests allow mean KL <= 0.4 and top-1
# >= 0.6 for the 4-bit schemes, <= 0.001 and 1.0 for q0f32. That KL follows
# what each run generates (0.16-0.24 for the same kernels across seeds), so
# what the fast kernels cost is measured on fixed text instead: the KL of
# q4f16_1 to the unquantized model, teacher-forced, may grow by at most
# 0.01 nats from the reference kernels to the fast ones (measured over 94
# tokens: 0.141 on the reference kernels, 0.143 on AVX-512).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up q0f32, q4f16_1 and q4f32_1' '
	build_model "$STORIES" q0f32 q0 &&
	build_model "$STORIES" q4f16_1 q4 &&
	build_model "$STORIES" q4f32_1 q4f32
'

test_expect_success 'q0f32: greedy from BOS gives the 60 tokens of the reference story' '
	mlc-check -q --raw --prompt "" --greedy --max-tokens 60 <q0.mp >check.mp &&
	ids=$(record_field check.mp check "\",\".join(map(str, r[\"prompts\"][0][\"prompt_ids\"] + r[\"prompts\"][0][\"ids\"]))") &&
	test "$ids" = "$STORIES_IDS" &&
	record_field check.mp check "r[\"prompts\"][0][\"text\"]" >story &&
	test_grep "^Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high$" story &&
	test "$(record_field check.mp check "r[\"pass\"]")" = True
'

test_expect_success 'q0f32 tells the same story on the reference and the generic kernels' '
	for k in reference generic; do
		mlc-check -q --raw --prompt "" --greedy --max-tokens 60 --kernels $k <q0.mp >check-$k.mp &&
		ids=$(record_field check-$k.mp check "\",\".join(map(str, r[\"prompts\"][0][\"prompt_ids\"] + r[\"prompts\"][0][\"ids\"]))") &&
		test "$ids" = "$STORIES_IDS" || return 1
	done
'

test_expect_success 'q4f16_1: the fast kernels cost at most 0.01 nats of KL on fixed text' '
	text="Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she found a big red ball under a tree. The sun was shining and the birds sang. Tom and his dog went to the big lake to swim." &&
	ids=$(mlc-check -q --model q4 --tokenize "$text" --ids | tr " " ",") &&
	logits () { mlc-check -q --library $1/$1-cpu.tar --model $1 --kernels $2 --score "$ids" --logits-out $3 </dev/null; } &&
	logits q0 reference unquantized.bin &&
	logits q4 reference q4-reference.bin &&
	logits q4 generic q4-generic.bin &&
	logits q4 auto q4-fast.bin &&
	$PYTHON - <<-PY
	import numpy as np
	def logp(f):
	    x = np.fromfile(f, dtype="<f4").reshape(-1, 512).astype(np.float64)
	    x -= x.max(axis=1, keepdims=True)
	    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))
	p = logp("unquantized.bin")
	kl = {k: float((np.exp(p) * (p - logp("q4-%s.bin" % k))).sum(axis=1).mean()) for k in ("reference", "generic", "fast")}
	print("teacher-forced KL to q0f32 over %d tokens: %s" % (len(p), kl))
	assert 0.02 < kl["reference"] < 0.4, kl
	assert kl["generic"] <= kl["reference"] + 0.01, kl
	assert kl["fast"] <= kl["reference"] + 0.01, kl
	PY
'

# check_scheme NAME MAX_KL MIN_TOP1
check_scheme () {
	mlc-check -q --raw --reference "$STORIES" <$1.mp >$1-check.mp &&
	$PYTHON - $2 $3 <<-PY
	import json, subprocess, sys
	r = json.loads(subprocess.check_output(["mlc-dump", "--type", "check", "$1-check.mp"]).splitlines()[-1])
	max_kl, min_top1 = float(sys.argv[1]), float(sys.argv[2])
	assert r["pass"] is True and r["diagnosis"] is None, r["diagnosis"]
	assert len(r["prompts"]) == 3
	for p in r["prompts"]:
	    assert all(p["criteria"].values()), p["criteria"]
	    assert p["stop_reason"] in ("length", "token", "string"), p["stop_reason"]
	    assert len(p["ids"]) > 0 and p["text"].strip()
	ref = r["reference"]
	print("%s: mean KL %.4f, top-1 %.3f, perplexity %.3f (reference %.3f)" % (
	    "$1", ref["kl_mean"], ref["top1_agreement"], ref["perplexity"], ref["perplexity_reference"]))
	assert ref["kl_mean"] <= max_kl, ref["kl_mean"]
	assert ref["top1_agreement"] >= min_top1, ref["top1_agreement"]
	assert ref["perplexity"] >= ref["perplexity_reference"] * 0.99
	PY
}

test_expect_success 'q4f16_1: every criterion passes; KL and top-1 against q0 reference in bounds' '
	check_scheme q4 0.4 0.6
'

test_expect_success 'q4f32_1: every criterion passes; KL and top-1 in bounds' '
	check_scheme q4f32 0.4 0.6
'

test_expect_success 'q0f32 against the float32 reference: essentially identical' '
	check_scheme q0 0.001 1.0
'

test_expect_success 'sampling is deterministic per seed and differs between seeds' '
	mlc-check -q --raw --temperature 0.9 --seed 7 --prompt "Once upon a time" <q4.mp >s7.mp &&
	mlc-check -q --raw --temperature 0.9 --seed 8 --prompt "Once upon a time" <q4.mp >s8.mp &&
	mlc-check -q --raw --temperature 0.9 --seed 7 --prompt "Once upon a time" <q4.mp >s7b.mp &&
	a=$(record_field s7.mp check "r[\"prompts\"][0][\"ids\"]") &&
	b=$(record_field s8.mp check "r[\"prompts\"][0][\"ids\"]") &&
	c=$(record_field s7b.mp check "r[\"prompts\"][0][\"ids\"]") &&
	test "$a" = "$c" && test "$a" != "$b" &&
	test "$(record_field s7.mp check "r[\"prompts\"][0][\"criteria\"][\"deterministic\"]")" = True
'

test_expect_success '--generate prints the story to stdout, and no record' '
	mlc-check -q --generate --raw --prompt "" --greedy --max-tokens 60 <q0.mp >out &&
	test_grep "^Once upon a time, there was a little girl named Lily" out &&
	! mlc-dump out >/dev/null 2>&1
'

test_expect_success 'prompts from a file; every mode gives the same greedy answers' '
	printf "Once upon a time\n\nThe sun was shining and\nOne day\n" >prompts.txt &&
	for mode in interactive local server; do
		mlc-check -q --raw --greedy --mode $mode --prompts prompts.txt <q4.mp >$mode.mp &&
		record_field $mode.mp check "[p[\"ids\"] for p in r[\"prompts\"]]" >$mode.ids || return 1
	done &&
	test "$(record_field local.mp check "len(r[\"prompts\"])")" = 3 &&
	test_cmp interactive.ids local.ids && test_cmp local.ids server.ids
'

test_expect_success 'records on the input pass through before the check record' '
	mlc-check -q --raw --greedy --prompt "Once" <q4.mp >all.mp &&
	mlc-dump all.mp | sed -e "s/^{\"type\":\"\([a-z]*\)\".*/\1/" >types &&
	printf "model\nconfig\n" >want-head && head -n 2 types >head && test_cmp want-head head &&
	test "$(tail -n 3 types | tr "\n" " ")" = "module library check "
'

test_done
