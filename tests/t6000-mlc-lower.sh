#!/bin/sh
# mlc-lower: the graph of every entry function, parameters bound and checked
# by name, passes by level, the memory estimate and its limit, overrides.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up stories260K q4f16_1' '
	build_model "$STORIES" q4f16_1 m
'

test_expect_success 'the module record binds every tensor and has the four entry functions' '
	test "$(record_field m.4-lower.mp module "sorted(f[\"name\"] for f in r[\"functions\"])")" = \
		"[$(printf "%s" "'"'"'create_kv_cache'"'"', '"'"'decode'"'"', '"'"'embed'"'"', '"'"'prefill'"'"'")]" &&
	n=$(record_field m.4-lower.mp module "len(r[\"params\"])") &&
	test "$n" = "$($PYTHON -c "import json; print(sum(len(s[\"records\"]) for s in json.load(open(\"m/tensor-cache.json\"))[\"records\"]))")" &&
	test "$(record_field m.4-lower.mp module "r[\"config\"]")" = "$TRASH/m/mlc-chat-config.json" &&
	test "$(record_field m.4-lower.mp module "r[\"weights\"]")" = "$TRASH/m"
'

ops () { record_field "$1" module "sorted(set(o[\"op\"] for f in r[\"functions\"] for o in f[\"ops\"]))"; }

test_expect_success 'symbolic sizes carry their bounds from the config' '
	test "$(record_field m.4-lower.mp module "[(v[\"name\"], v[\"max\"]) for v in r[\"vars\"]]")" = \
		"[('"'"'seq_len'"'"', 512), ('"'"'batch'"'"', 128), ('"'"'total_seq_len'"'"', 512)]"
'

test_expect_success 'levels: O0 dequantizes separately, O1 fuses it, O2 also fuses add+norm and the gate' '
	mlc-lower -q -O0 <m.3-quant.mp >o0.mp && ops o0.mp >o0 &&
	mlc-lower -q -O1 <m.3-quant.mp >o1.mp && ops o1.mp >o1 &&
	mlc-lower -q -O2 <m.3-quant.mp >o2.mp && ops o2.mp >o2 &&
	test_grep dequantize o0 && test_grep silu_mul o0 && ! grep -q add_rms_norm o0 &&
	! grep -q dequantize o1 && test_grep silu_mul o1 &&
	! grep -q dequantize o2 && ! grep -q silu_mul o2 && test_grep add_rms_norm o2 &&
	test "$(record_field o0.mp module "r[\"passes\"]")" = "['"'"'dead-code-elimination'"'"', '"'"'plan-memory'"'"']" &&
	test "$(record_field o2.mp module "len(r[\"passes\"])")" = 5
'

test_expect_success '--pass-off skips one pass; an unknown name is a usage error' '
	mlc-lower -q --pass-off fuse-add-norm <m.3-quant.mp >off.mp && ops off.mp >off &&
	! grep -q add_rms_norm off && ! grep -q silu_mul off &&
	test_must_fail mlc-lower --pass-off fuse-everything <m.3-quant.mp 2>err &&
	test_grep "no pass named .fuse-everything." err &&
	mlc-lower --list-passes >list && test_line_count = 5 list && test_grep "^plan-memory *O0" list
'

test_expect_success '--dump appends a pass record after every pass, in order' '
	mlc-lower -q --dump <m.3-quant.mp >dump.mp &&
	mlc-dump --type pass dump.mp >passes &&
	test_line_count = 5 passes &&
	$PYTHON -c "
import json
p = [json.loads(l) for l in open(\"passes\")]
assert [x[\"pass\"] for x in p] == [\"fuse-dequantize-matmul\", \"fuse-add-norm\", \"fuse-gate-up\", \"dead-code-elimination\", \"plan-memory\"]
assert [x[\"index\"] for x in p] == list(range(5))
assert p[0][\"passes\"] == [\"fuse-dequantize-matmul\"] and len(p[4][\"passes\"]) == 5
" &&
	test "$(mlc-dump --type module dump.mp | wc -l)" = 1
'

test_expect_success 'the memory estimate is reported, and --max-memory refuses what cannot fit' '
	mlc-lower <m.3-quant.mp >/dev/null 2>err &&
	test_grep "memory: parameters .*, KV cache .* per token" err &&
	total=$(record_field m.4-lower.mp module "r[\"memory\"][\"total_bytes\"]") &&
	mlc-lower -q --max-memory $total <m.3-quant.mp >/dev/null &&
	test_must_fail mlc-lower -q --max-memory $((total - 1)) <m.3-quant.mp >/dev/null 2>err &&
	test_grep "the model needs $total bytes (parameters .*, KV cache .* at a context of 512 tokens" err &&
	kv=$(record_field m.4-lower.mp module "r[\"memory\"][\"kv_bytes_per_token\"]") &&
	test $kv = $((2 * 5 * 4 * 8 * 4))
'

test_expect_success '--overrides re-derive the bounds (prefill clamped to the context window)' '
	mlc-lower --overrides "context_window_size=64;prefill_chunk_size=128;max_batch_size=3" <m.3-quant.mp >ov.mp 2>err &&
	test_grep "prefill_chunk_size 128 is clamped to 64" err &&
	test "$(record_field ov.mp module "[(f[\"name\"], f[\"rows_max\"]) for f in r[\"functions\"] if f[\"name\"] in (\"prefill\", \"decode\")]")" = \
		"[('"'"'prefill'"'"', 64), ('"'"'decode'"'"', 3)]" &&
	test_must_fail mlc-lower --overrides "context_window=5" <m.3-quant.mp 2>err &&
	test_grep "unknown key .context_window." err &&
	test_must_fail mlc-lower --overrides "tensor_parallel_shards=2" <m.3-quant.mp 2>err &&
	test_grep "runs on one device" err
'

test_expect_success 'weights of another model: the missing or mis-shaped parameter is named' '
	mkmodel --arch llama --hidden 96 --tokenizer "$STORIES" -o other >/dev/null &&
	build_model other q4f16_1 o &&
	test_must_fail mlc-lower --config m/mlc-chat-config.json --weights o </dev/null 2>err &&
	test_grep "parameter model.embed_tokens.q_weight has shape \[512, 12\] in the weights, but the config implies \[512, 8\]" err
'

test_expect_success 'a scheme mismatch between config and weights is refused' '
	mlc-dump m.3-quant.mp | sed -e "s/\"scheme\":\"q4f16_1\"/\"scheme\":\"q0f32\"/" | mlc-dump --pack >mis.mp &&
	test_must_fail mlc-lower <mis.mp 2>err &&
	test_grep "the weights were quantized as q0f32 but .* says q4f16_1" err
'

test_expect_success 'a sliding window gives the rolling-cache bounds' '
	mkmodel --arch mistral --tokenizer "$STORIES" -o mis >/dev/null &&
	build_model mis q0f32 mo --prefill-chunk-size 16 &&
	test "$(record_field mo.4-lower.mp module "[(v[\"name\"], v[\"max\"]) for v in r[\"vars\"]]")" = \
		"[('"'"'seq_len'"'"', 16), ('"'"'batch'"'"', 128), ('"'"'rolling_cache_len'"'"', 32), ('"'"'kv_seq_len'"'"', 48)]"
'

test_expect_success 'a module without a memory plan is refused by mlc-emit' '
	mlc-lower -q --pass-off plan-memory <m.3-quant.mp >unplanned.mp &&
	test_must_fail mlc-emit -o u.tar <unplanned.mp 2>err &&
	test_grep "function embed has no memory plan" err &&
	test ! -e u.tar
'

test_expect_success 'standalone files give the same module, byte for byte, every time' '
	mlc-lower -q --config m/mlc-chat-config.json --weights m </dev/null >a.mp &&
	mlc-lower -q --config m/mlc-chat-config.json --weights m/tensor-cache.json </dev/null >b.mp &&
	cmp a.mp b.mp &&
	mlc-dump --type module m.4-lower.mp >from-stream &&
	mlc-dump a.mp >from-files &&
	test_cmp from-stream from-files
'

test_expect_success 'no config or no weights: say what to give' '
	test_must_fail mlc-lower <"$TRASH/.empty" 2>err &&
	test_grep "no config: give --config FILE" err &&
	test_must_fail mlc-lower --config m/mlc-chat-config.json <"$TRASH/.empty" 2>err &&
	test_grep "no weights: give --weights PATH" err
'

test_done
