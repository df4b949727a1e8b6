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
	cp -a base b3 && ln b3/params_shard_0.bin keep.bin &&
	tcupdate b3 model.layers.0.self_attn.qkv_proj.q_scale=0.5 >out &&
	test_grep "1 replaced, 0 added" out &&
	cmp keep.bin base/params_shard_0.bin &&
	! cmp -s b3/params_shard_0.bin base/params_shard_0.bin
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

scales () {
	for l in 0 1 2 3 4; do
		for m in self_attn.qkv_proj self_attn.o_proj mlp.gate_up_proj mlp.down_proj; do
			printf " model.layers.$l.$m.q_calibration_scale=$1"
		done
	done
}

test_expect_success 'the inference build keeps a calibrated cache as it is' '
	cp -a base cal && tcupdate cal $(scales 0.01) >out &&
	test_grep "0 replaced, 20 added" out &&
	cp -a cal cal.before &&
	mlc-cfg -q --model "$S" --quantization e4m3_e4m3_f16 -o cal >/dev/null &&
	mlc-quant --model "$S" --config cal/mlc-chat-config.json -o cal --stream inf.mp 2>err &&
	test_grep "kept the calibrated e4m3_e4m3_f16 weights already there (72 tensors in 2 shards" err &&
	for f in tensor-cache.json params_shard_0.bin params_shard_1.bin; do cmp cal.before/$f cal/$f || return 1; done &&
	mlc-dump inf.mp | tail -n 1 >w.json &&
	test_grep "\"calibration\":\"calibrated\"" w.json &&
	test_grep "\"shards\":2" w.json
'

test_expect_success 'without calibration the inference build writes placeholders' '
	cp -a base nocal &&
	mlc-cfg -q --model "$S" --quantization e4m3_e4m3_f16 -o nocal >/dev/null &&
	mlc-quant --model "$S" --config nocal/mlc-chat-config.json -o nocal --stream nocal.mp 2>err &&
	test_grep "activation scales are uncalibrated placeholders" err &&
	mlc-dump nocal.mp | tail -n 1 | test_grep "\"calibration\":\"uncalibrated\""
'

test_expect_success 'a cache with only some scales measured is refused, not overwritten' '
	cp -a nocal part && tcupdate part model.layers.0.mlp.down_proj.q_calibration_scale=0.5 >/dev/null &&
	cp -a part part.before &&
	test_must_fail mlc-quant --model "$S" --config part/mlc-chat-config.json -o part --stream /dev/null 2>err &&
	test_grep "measured activation scales for some layers and placeholders for 19 others" err &&
	diff -r part.before part
'

test_done
