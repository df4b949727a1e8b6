#!/bin/sh
# stories260K from a GGUF through the whole pipeline tells llama2.c's story
# token for token; from a Q8_0 GGUF, mlc-check --reference on the GGUF
# reports what re-quantizing cost.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

GW="$PYTHON $SRC_DIR/tests/helpers/gguf_write.py"

test_expect_success 'set up: stories260K as F32 and Q8_0 GGUFs, built q0f32 and q4f16_1' '
	$GW write "$STORIES" stories.gguf --type f32 &&
	$GW write "$STORIES" stories-q8.gguf --type q8_0 &&
	build_model stories.gguf q0f32 q0 &&
	build_model stories-q8.gguf q4f16_1 q4 2>q4.err &&
	test_grep "stories-q8.gguf: .* stored as Q8_0 (and similar): dequantized, then quantized again as q4f16_1" q4.err
'

test_expect_success 'q0f32 from the GGUF: greedy from BOS gives the 60 tokens of the reference story' '
	mlc-check -q --raw --prompt "" --greedy --max-tokens 60 <q0.mp >check.mp &&
	ids=$(record_field check.mp check "\",\".join(map(str, r[\"prompts\"][0][\"prompt_ids\"] + r[\"prompts\"][0][\"ids\"]))") &&
	test "$ids" = "$STORIES_IDS" &&
	test "$(record_field check.mp check "r[\"pass\"]")" = True
'

test_expect_success 'q4f16_1 from the Q8_0 GGUF, --reference the GGUF: KL and top-1 reported and in bounds' '
	mlc-check -q --raw --reference stories-q8.gguf <q4.mp >q4-check.mp &&
	$PYTHON - <<-PY
	import json, subprocess
	r = json.loads(subprocess.check_output(["mlc-dump", "--type", "check", "q4-check.mp"]).splitlines()[-1])
	assert r["pass"] is True, r["diagnosis"]
	ref = r["reference"]
	print("q4f16_1 from Q8_0: mean KL %.4f, top-1 %.3f" % (ref["kl_mean"], ref["top1_agreement"]))
	assert 0 < ref["kl_mean"] <= 0.4 and ref["top1_agreement"] >= 0.6, ref
	PY
'

test_done
