#!/bin/sh
# FP8 calibration, MLC-LLM's flow: the calibration build
# (e4m3_e4m3_f16_max_calibrate), mlc-check --calibrate on a ShareGPT
# dataset, then the inference build (e4m3_e4m3_f16) reusing the calibrated
# cache. The scales are checked against an independent numpy emulation of
# MLC's calibration mode (tests/reference/calib_oracle.py); wrong scales,
# placeholders and bad datasets are refused or diagnosed.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

DATA=$FIXTURES/calibration/sharegpt-stories.json

# calibration build into DIR (streams DIR.mp and DIR.1-fetch.mp)
calibration_build () {
	build_model "$1" e4m3_e4m3_f16_max_calibrate "$2"
}

# the inference build over a calibrated (or not) calibration build DIR
inference_build () {
	mlc-cfg -q --quantization e4m3_e4m3_f16 -o "$1" <"$1.1-fetch.mp" |
	mlc-quant -q | mlc-lower -q | mlc-emit -q >"$1.inf.mp"
}

scale_of () { record_field "$1" calibration "[l[\"scale\"] for l in r[\"layers\"]]"; }

test_expect_success 'setup: the calibration build of stories260K' '
	calibration_build "$STORIES" cb &&
	cp -a cb cb.orig
'

test_expect_success 'calibrate: every FP8 layer measured, written as MODULE.q_calibration_scale, and recorded' '
	mlc-check --calibrate="$DATA" <cb.mp >cal.mp 2>err &&
	test_grep "calibrated 20 layers on 16 requests" err &&
	test "$(record_field cal.mp calibration "(r[\"samples\"], r[\"seed\"], r[\"usable\"], r[\"added\"], r[\"replaced\"], len(r[\"layers\"]))")" = "(16, 0, 41, 20, 0, 20)" &&
	test "$(record_field cal.mp calibration "r[\"dataset_sha256\"]")" = "$(sha256sum <"$DATA" | cut -d" " -f1)" &&
	test "$(record_field cal.mp calibration "all(len(q[\"generated_ids\"]) <= q[\"max_tokens\"] and q[\"prompt_ids\"][0] == 1 for q in r[\"requests\"])")" = True &&
	test "$(record_field cal.mp calibration "all(1 / (448 * 512) <= l[\"scale\"] < 1 for l in r[\"layers\"]) and r[\"scales\"][\"min\"] <= r[\"scales\"][\"median\"] <= r[\"scales\"][\"max\"]")" = True &&
	test_grep "model.layers.4.mlp.down_proj.q_calibration_scale" cb/tensor-cache.json &&
	test -f cb/params_shard_1.bin &&
	cmp cb.orig/params_shard_0.bin cb/params_shard_0.bin &&
	mlc-dump cal.mp | test_grep "\"type\":\"library\""
'

test_expect_success 'the stored scales are the measured ones in bfloat16' '
	mlc-dump --type calibration cal.mp | tail -n 1 >cal.json &&
	$PYTHON - <<-PY
	import json, numpy as np
	rec = json.load(open("cal.json"))
	doc = json.load(open("cb/tensor-cache.json"))
	stored = {}
	for shard in doc["records"]:
	    raw = open("cb/" + shard["dataPath"], "rb").read()
	    for r in shard["records"]:
	        if r["name"].endswith("q_calibration_scale"):
	            assert r["dtype"] == "float32" and r["shape"] == [1] and r["nbytes"] == 2, r
	            stored[r["name"]] = raw[r["byteOffset"]:r["byteOffset"] + 2]
	for l in rec["layers"]:
	    f = np.array([l["scale"]], np.float32).view(np.uint32)[0]
	    b = ((int(f) + 0x7FFF + ((int(f) >> 16) & 1)) >> 16) & 0xFFFF  # round to nearest even
	    assert stored[l["name"]] == bytes([b & 255, b >> 8]), l
	PY
'

# measured on this flow: mean KL 0.020 nats, top-1 agreement 88% (chat
# prompts; 0.014 and 96% raw); the bound leaves 2.5 times that margin
test_expect_success 'the inference build reuses the cache and passes every criterion, KL bounded' '
	inference_build cb 2>err &&
	cmp cb.orig/params_shard_0.bin cb/params_shard_0.bin &&
	test "$(record_field cb.inf.mp weights "r[\"calibration\"]")" = calibrated &&
	mlc-check --reference "$STORIES" --max-kl 0.05 --min-top1 0.75 <cb.inf.mp >chk.mp 2>err &&
	test_grep "3 of 3 prompts pass" err &&
	test "$(record_field chk.mp check "r[\"pass\"] and r[\"reference\"][\"kl_mean\"] < 0.05")" = True &&
	mlc-check --raw --reference "$STORIES" --max-kl 0.05 --min-top1 0.75 <cb.inf.mp >/dev/null 2>err &&
	test_grep "3 of 3 prompts pass" err
'

# FP8 layers are one op at every optimisation level (MLC's FP8 linear):
# unfused plans calibrate to the same scales and compute the same model
test_expect_success 'at -O0 the FP8 layers still quantize their activations' '
	cp -a cb.orig o0 &&
	mlc-lower -q -O0 --config o0/mlc-chat-config.json --weights o0 <"$TRASH/.empty" | mlc-emit -q -o o0-cal.tar >/dev/null &&
	mlc-check -q --calibrate="$DATA" --library o0-cal.tar --model o0 <"$TRASH/.empty" >o0cal.mp &&
	test "$(scale_of o0cal.mp)" = "$(scale_of cal.mp)" &&
	mlc-lower -q -O0 --config cb/mlc-chat-config.json --weights cb <"$TRASH/.empty" | mlc-emit -q -o o0-inf.tar >/dev/null &&
	mlc-check --reference "$STORIES" --max-kl 0.05 --min-top1 0.75 --library o0-inf.tar --model cb <"$TRASH/.empty" >/dev/null 2>err &&
	test_grep "3 of 3 prompts pass" err
'

test_expect_success 'placeholders left in: the inference build is refused' '
	cp -a cb.orig ph &&
	mlc-cfg -q --quantization e4m3_e4m3_f16 -o ph <cb.1-fetch.mp | mlc-quant 2>err >ph.3-quant.mp &&
	test_grep "activation scales are uncalibrated placeholders" err &&
	mlc-lower -q <ph.3-quant.mp | mlc-emit -q >ph.inf.mp &&
	test_must_fail mlc-check <ph.inf.mp >rec.mp 2>err &&
	test_line_count = 1 err &&
	test_grep "q_calibration_scale is uncalibrated (nan).*(likely stage: calibration)" err
'

# scale every measured value by $2 in a copy $3 of cb
rescaled () {
	cp -a cb "$3" &&
	tcupdate "$3" $($PYTHON -c "
import json
r = json.load(open(\"cal.json\"))
print(\" \".join(\"%s=%.9g\" % (l[\"name\"], l[\"scale\"] * $2) for l in r[\"layers\"]))") >/dev/null
}

# Wrong scales, both ways. 1000 times too large costs stories260K's answers
# little (mean KL 0.021 nats against 0.018: e4m3 spans 2^-9 to 448, so its
# largest activations still keep 3 bits), but every layer's activations
# then call for a thousandth of its scale: degraded, whatever the answers.
# 1000 times too small saturates every activation: garbage.
test_expect_success 'wrong scales (x1000, /1000): degraded, calibration named as the likely stage' '
	test "$(record_field chk.mp check "r[\"scale_fit\"][\"pass\"] and 0.25 < r[\"scale_fit\"][\"lowest\"] <= r[\"scale_fit\"][\"highest\"] < 2")" = True &&
	rescaled cb 1000 large &&
	test_must_fail mlc-check --reference "$STORIES" --library cb/cb-cpu.tar --model large <"$TRASH/.empty" >rec.mp 2>err &&
	test_grep "3 of 3 prompts pass, but the activation scales are wrong (degraded); likely stage: calibration" err &&
	test_grep "the stored scale is 1[0-9][0-9][0-9] times too large" err &&
	test "$(record_field rec.mp check "(r[\"pass\"], r[\"diagnosis\"], r[\"scale_fit\"][\"pass\"], r[\"scale_fit\"][\"layers\"])")" = "(False, '"'calibration'"', False, 20)" &&
	test "$(record_field rec.mp check "r[\"scale_fit\"][\"highest\"] < 0.002")" = True &&
	rescaled cb 0.001 small &&
	test_must_fail mlc-check --reference "$STORIES" --library cb/cb-cpu.tar --model small <"$TRASH/.empty" >rec.mp 2>err &&
	test_grep "0 of 3 prompts pass; likely stage: calibration" err &&
	test_grep "the stored scale is [0-9]* times too small: its activations saturate" err &&
	test "$(record_field rec.mp check "(r[\"diagnosis\"], r[\"reference\"][\"kl_mean\"] > 1)")" = "('"'calibration'"', True)"
'

test_expect_success 'the same seed twice: the same cache bytes; another seed: another sample' '
	cp -a cb.orig s0a && cp -a cb.orig s0b && cp -a cb.orig s1 &&
	mlc-check -q --calibrate="$DATA" --library cb.orig/cb-cpu.tar --model s0a <"$TRASH/.empty" >a.mp &&
	mlc-check -q --calibrate="$DATA" --library cb.orig/cb-cpu.tar --model s0b <"$TRASH/.empty" >b.mp &&
	diff -r s0a s0b &&
	mlc-check -q --calibrate="$DATA" --seed 1 --num-calibration-samples 16 --library cb.orig/cb-cpu.tar --model s1 \
		<"$TRASH/.empty" >c.mp &&
	test "$(record_field a.mp calibration "[q[\"item\"] for q in r[\"requests\"]]")" = \
	     "$(record_field cal.mp calibration "[q[\"item\"] for q in r[\"requests\"]]")" &&
	test "$(record_field a.mp calibration "[q[\"item\"] for q in r[\"requests\"]]")" != \
	     "$(record_field c.mp calibration "[q[\"item\"] for q in r[\"requests\"]]")" &&
	! cmp -s s0a/params_shard_1.bin s1/params_shard_1.bin
'

test_expect_success 'calibrating again replaces the scales in place' '
	mlc-check -q --calibrate="$DATA" --seed 1 --library cb.orig/cb-cpu.tar --model s0a <"$TRASH/.empty" >d.mp &&
	test "$(record_field d.mp calibration "(r[\"replaced\"], r[\"added\"])")" = "(20, 0)" &&
	cmp s0a/params_shard_1.bin s1/params_shard_1.bin
'

bad_dataset () {
	dataset=$1 && shift &&
	cp -a cb.orig bad &&
	test_must_fail mlc-check -q --calibrate="$dataset" "$@" --library cb.orig/cb-cpu.tar --model bad <"$TRASH/.empty" >rec.mp 2>err &&
	test_line_count = 1 err &&
	diff -r cb.orig bad &&
	! grep -q q_calibration_scale bad/tensor-cache.json &&
	ls -a bad >ls && test_lacks tmp ls &&
	rm -rf bad
}

test_expect_success 'bad datasets: one line naming the file and the reason, nothing written' '
	echo "{\"conversations\": []}" >dict.json &&
	bad_dataset dict.json && test_grep "dict.json: not a ShareGPT dataset" err &&
	head -c 3000 "$DATA" >cut.json &&
	bad_dataset cut.json && test_grep "^mlc-check: error: cut.json:[0-9]*:[0-9]*: premature end of input" err &&
	bad_dataset "$DATA" --num-calibration-samples 42 &&
	test_grep "sharegpt-stories.json: 41 of its 44 items are usable" err &&
	echo "[{\"conversations\": [{\"from\": \"human\", \"value\": 7}, {\"from\": \"gpt\", \"value\": \"Hi\"}]}]" >num.json &&
	bad_dataset num.json && test_grep "num.json: item 0: conversations\[0\].value is" err
'

test_expect_success 'a model that is not a calibration build is refused' '
	build_model "$STORIES" q4f16_1 q4 &&
	test_must_fail mlc-check --calibrate="$DATA" <q4.mp >rec.mp 2>err &&
	test_grep "calibration needs a calibration build (quantization e4m3_e4m3_f16_max_calibrate), this model is q4f16_1" err
'

test_expect_success 'scripts/calibrate.sh: the whole flow, reproducibly; a failing stage named' '
	"$SRC_DIR/scripts/calibrate.sh" --num-calibration-samples 4 --seed 3 "$STORIES" "$DATA" flow/st \
		--reference "$STORIES" --max-kl 0.05 >out 2>err &&
	test_must_be_empty out &&
	test_grep "3 of 3 prompts pass" err &&
	test -f flow/st/st-calibrate-cpu.tar && test -f flow/st/st-cpu.tar &&
	mlc-dump flow/st.stream.mp | $PYTHON -c "import json, sys
recs = [json.loads(l) for l in sys.stdin]
types = [r[\"type\"] for r in recs]
assert types.count(\"config\") == 2 and types.count(\"library\") == 2, types
cal = [r for r in recs if r[\"type\"] == \"calibration\"][0]
assert (cal[\"samples\"], cal[\"seed\"], len(cal[\"layers\"])) == (4, 3, 20), cal
chk = recs[-1]
assert chk[\"type\"] == \"check\" and chk[\"pass\"] and chk[\"scale_fit\"][\"pass\"], chk
assert json.load(open(\"flow/st/mlc-chat-config.json\"))[\"quantization\"] == \"e4m3_e4m3_f16\"" &&
	cp -a flow/st first &&
	"$SRC_DIR/scripts/calibrate.sh" --num-calibration-samples 4 --seed 3 "$STORIES" "$DATA" flow/st 2>err &&
	diff -r first flow/st &&
	echo "{}" >object.json &&
	test_must_fail "$SRC_DIR/scripts/calibrate.sh" "$STORIES" object.json flow/bad 2>err &&
	test_grep "object.json: not a ShareGPT dataset" err &&
	test_grep "^calibrate.sh: stopped at calibration: mlc-check --calibrate (exit status 1)" err
'

# A random llama model: the scales equal an independent numpy run of the
# same requests in MLC's calibration arithmetic within one bfloat16 ulp,
# with the default kernels and with the reference set
test_expect_success 'a random llama: scales within 1 bf16 ulp of the numpy oracle' '
	mkmodel --arch llama --tokenizer "$STORIES" -o rnd >/dev/null &&
	calibration_build rnd rc &&
	for k in auto reference; do
		rm -rf rk && cp -a rc rk &&
		mlc-check -q --kernels $k --calibrate="$DATA" --num-calibration-samples 6 --library rc/rc-cpu.tar \
			--model rk <"$TRASH/.empty" >rk.mp &&
		mlc-dump --type calibration rk.mp | tail -n 1 >rk.json &&
		$PYTHON "$TESTS_DIR/reference/calib_oracle.py" rc rk.json >oracle.txt &&
		test_line_count = 8 oracle.txt &&
		$PYTHON - <<-PY || return 1
		import json, math
		doc = json.load(open("rk/tensor-cache.json"))
		stored = {}
		for shard in doc["records"]:
		    raw = open("rk/" + shard["dataPath"], "rb").read()
		    for r in shard["records"]:
		        if r["name"].endswith("q_calibration_scale"):
		            b = raw[r["byteOffset"]:r["byteOffset"] + 2]
		            stored[r["name"]] = int.from_bytes(b, "little")
		import struct
		for line in open("oracle.txt"):
		    name, v = line.split()
		    v = float(v)
		    got = struct.unpack("<f", struct.pack("<I", stored[name] << 16))[0]
		    ulp = 2.0 ** (math.floor(math.log2(v)) - 7)
		    assert abs(got - v) <= ulp, (name, got, v, ulp)
		PY
	done
'

test_done
