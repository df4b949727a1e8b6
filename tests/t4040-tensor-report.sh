#!/bin/sh
# mlc-dump --tensors: the quantization report. Every parameter once, with
# the bytes tensor-cache.json gives it; against the source, the errors
# numpy measures when it quantizes the same tensor with the independent
# model of MLC's convert_weight (tests/helpers/mlc_convert_ref.py).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up stories260K q4f16_1' '
	build_model "$STORIES" q4f16_1 m &&
	mlc-dump --tensors --source "$STORIES" m >report &&
	cat report
'

test_expect_success 'one line per parameter; the bytes are tensor-cache.json s' '
	$PYTHON - m report <<-PY
	import json, sys
	tc = json.load(open(sys.argv[1] + "/tensor-cache.json"))
	recs = [r for rec in tc["records"] for r in rec["records"]]
	nbytes = {r["name"]: r["nbytes"] for r in recs}
	lines = open(sys.argv[2]).read().splitlines()
	rows = {l.split()[0]: l.split() for l in lines[1:-1]}
	total = 0
	for name, f in rows.items():
	    base = name[:-len(".weight")] if name.endswith(".weight") else name
	    want = nbytes.get(name) or nbytes[base + ".q_weight"] + nbytes[base + ".q_scale"]
	    b = [x for x in f if x.isdigit()][-1]
	    assert int(b) == want, (name, b, want)
	    total += want
	assert total == sum(nbytes.values()), (total, sum(nbytes.values()))
	assert lines[-1].startswith("total (%d parameters)" % len(rows)), lines[-1]
	assert int(lines[-1].split()[-4]) == total, lines[-1]
	PY
'

test_expect_success 'the errors of a quantized tensor are what numpy measures' '
	$PYTHON - "$STORIES" report <<-PY
	import sys, numpy as np
	sys.path.insert(0, "$TESTS_DIR/helpers")
	import mlc_convert_ref as ref
	src = ref.read_safetensors(sys.argv[1] + "/model.safetensors")
	w = np.asarray(src["model.layers.0.mlp.down_proj.weight"][0], np.float32)
	w16 = w.astype(np.float16).astype(np.float32)
	words, scale = ref.group_quant(w16, "float16", 4, 32)
	n, k = w.shape
	q = ((words[:, :, None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15).reshape(n, -1)[:, :k]
	deq = (q.astype(np.float32) - 7) * np.repeat(scale, 32, axis=1)[:, :k]
	err = deq - w
	rms, mx = float(np.sqrt(np.mean(err ** 2))), float(np.abs(err).max())
	rel = 100 * rms / float(np.sqrt(np.mean(w ** 2)))
	line = [l for l in open(sys.argv[2]) if l.startswith("model.layers.0.mlp.down_proj.weight ")][0].split()
	got_rms, got_max, got_rel = float(line[-3]), float(line[-2]), float(line[-1].rstrip("%"))
	assert abs(got_rms - rms) <= 1e-3 * rms, (got_rms, rms)
	assert abs(got_max - mx) <= 1e-3 * mx, (got_max, mx)
	assert abs(got_rel - rel) <= 1e-2 * rel, (got_rel, rel)
	# a float16 norm: the error of rounding to float16 alone
	v = np.asarray(src["model.norm.weight"][0], np.float32)
	e16 = float(np.abs(v.astype(np.float16).astype(np.float32) - v).max())
	line = [l for l in open(sys.argv[2]) if l.startswith("model.norm.weight ")][0].split()
	assert line[1] == "float16" and abs(float(line[-2]) - e16) <= 1e-6, (line, e16)
	PY
'

test_expect_success 'without --source: the table alone; a wrong source names the tensor' '
	mlc-dump --tensors m >plain &&
	test "$(wc -l <plain)" = "$(wc -l <report)" &&
	test_lacks "rms error" plain &&
	mkmodel --arch qwen2 --tokenizer "$STORIES" -o qw >/dev/null &&
	test_must_fail mlc-dump --tensors --source qw m 2>err &&
	test_grep "the source has no tensor model.layers.0.self_attn.q_proj.weight\|values in the source" err &&
	{ mlc-dump --source qw 2>err; test $? = 2; } && test_grep "source goes with --tensors" err
'

test_done
