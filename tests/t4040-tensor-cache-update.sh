#!/bin/sh
# Updating a tensor cache as TVM's dump_tensor_cache(update_if_exists=True)
# does (how calibration saves its scales), compared byte for byte with an
# independent Python model of it (tests/helpers/tc_update_ref.py).
. "$(dirname "$0")/lib.sh"

S=$FIXTURES/stories260K
L0=model.layers.0.self_attn.qkv_proj.q_calibration_scale
L1=model.layers.1.mlp.down_proj.q_calibration_scale

test_expect_success 'setup: an FP8 calibration build of stories260K' '
	mlc-cfg -q --model "$S" --quantization e4m3_e4m3_f16_max_calibrate -o base >/dev/null &&
	mlc-quant -q --model "$S" --config base/mlc-chat-config.json -o base --stream /dev/null &&
	test_lacks "$L0" base/tensor-cache.json
'

test_expect_success 'new names go to a new shard; the JSON is kept and extended' '
	cp -a base ours && cp -a base ref &&
	tcupdate ours "$L0=0.0123" "$L1=1e-5" >out &&
	test_grep "0 replaced, 2 added" out &&
	$PYTHON "$TESTS_DIR/helpers/tc_update_ref.py" ref "$L0=0.0123" "$L1=1e-5" &&
	diff -r ours ref &&
	test -f ours/params_shard_1.bin &&
	cmp base/params_shard_0.bin ours/params_shard_0.bin
'

test_expect_success 'a name already there is overwritten in place and its shard md5 recomputed' '
	tcupdate ours "$L1=2.5" "$L0=3e-3" >out &&
	test_grep "2 replaced, 0 added" out &&
	$PYTHON "$TESTS_DIR/helpers/tc_update_ref.py" ref "$L1=2.5" "$L0=3e-3" &&
	diff -r ours ref
'

test_expect_success 'bf16 rounding matches TVM: ties to even inside the range, truncation outside' '
	cp -a base o2 && cp -a base r2 &&
	tcupdate o2 "extra=1.00390625,1.01171875,3.0e38,-3.4e38,1e-40" >/dev/null &&
	$PYTHON "$TESTS_DIR/helpers/tc_update_ref.py" r2 "extra=1.00390625,1.01171875,3.0e38,-3.4e38,1e-40" &&
	diff -r o2 r2
'

test_expect_success 'a tensor of another dtype or size is refused and nothing changes' '
	cp -a ours before &&
	test_must_fail tcupdate ours "model.norm.weight=1,2" 2>err &&
	test_grep "cannot update model.norm.weight: it is stored as float16" err &&
	test_must_fail tcupdate ours "$L0=1,2" 2>err &&
	test_grep "not as 2 float32 values" err &&
	diff -r before ours &&
	ls -a >dir.ls && test_lacks .tmp. dir.ls
'

test_expect_success 'the shards of the old cache are never written: files are replaced, not edited' '
	cp -a base linked && ln base/params_shard_0.bin keep.bin &&
	tcupdate base "$L0=7" >/dev/null &&
	cmp keep.bin linked/params_shard_0.bin
'

test_expect_success 'a failed write leaves the old cache and no temporaries' '
	mkdir w && cp -a base w/victim && cp -a base victim.orig &&
	( cd w && trap "" XFSZ && ulimit -f 0 && tcupdate victim "$L0=1" "$L1=2" ) 2>&1 | cat >err;
	test_grep "write error: File too large" err &&
	diff -r victim.orig w/victim &&
	ls -A w >left && echo victim >want && test_cmp want left
'

test_expect_success 'killed at any moment: the old cache or the new one, and the next run cleans up' '
	cp -a base fresh && tcupdate fresh "$L0=1" "$L1=2" >/dev/null &&
	for delay in 0 0.005 0.01 0.02 0.04; do
		rm -rf k && cp -a base k &&
		{ tcupdate k "$L0=1" "$L1=2" >/dev/null 2>&1 & pid=$!; } &&
		sleep $delay && kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null;
		{ diff -r base k >/dev/null || diff -r fresh k >/dev/null; } || { echo "mixed state after $delay s"; return 1; }
	done &&
	tcupdate k "$L0=1" "$L1=2" >/dev/null &&
	diff -r fresh k && ls -a | grep "[.]k[.]tmp[.]" >left; test_must_be_empty left
'

test_done
