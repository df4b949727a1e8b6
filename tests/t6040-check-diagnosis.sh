#!/bin/sh
# Deliberately broken artifacts get the right diagnosis: weights from
# another model (a load error naming the parameter), a shuffled tokenizer
# (garbage: config/tokenizer), 3-bit quantization of a tiny model (degraded,
# with its KL; without a reference too, since its tokenizer round-trips), a
# random model whose unquantized reference is just as incoherent (the source
# model, not the pipeline), a truncated shard (a load error naming the file).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

diagnosis () { record_field "$1" check "r[\"diagnosis\"]"; }

test_expect_success 'set up stories260K q4f16_1' '
	build_model "$STORIES" q4f16_1 m
'

test_expect_success 'weights from another model: load error naming the parameter' '
	mkmodel --arch llama --hidden 96 --tokenizer "$STORIES" -o other >/dev/null &&
	build_model other q4f16_1 o &&
	test_must_fail mlc-check --library m/m-cpu.tar --config m/mlc-chat-config.json --weights o \
		<"$TRASH/.empty" >rec.mp 2>err &&
	test_grep "parameter model.embed_tokens.q_weight is uint32 \[512, 12\], but .*m-cpu.tar needs uint32 \[512, 8\]" err &&
	test_grep "likely stage: library/weights mismatch" err &&
	test "$(diagnosis rec.mp)" = "library/weights mismatch" &&
	test "$(record_field rec.mp check "r[\"pass\"]")" = False &&
	test_grep "model.embed_tokens.q_weight" rec.mp
'

test_expect_success 'a library built for another scheme: the config says which' '
	build_model "$STORIES" q4f32_1 f32 &&
	test_must_fail mlc-check --library f32/f32-cpu.tar --model m <"$TRASH/.empty" >rec.mp 2>err &&
	test_grep "f32-cpu.tar was built for q4f32_1 weights, but .* says q4f16_1" err &&
	test "$(diagnosis rec.mp)" = "library/config mismatch"
'

test_expect_success 'a shuffled tokenizer: garbage, diagnosed as config/tokenizer' '
	cp -r m shuffled &&
	$PYTHON - <<-PY &&
	import json, random
	t = json.load(open("shuffled/tokenizer.json"))
	v = t["model"]["vocab"]
	rest = [k for k, i in v.items() if i >= 3]
	ids = [v[k] for k in rest]
	random.Random(5).shuffle(ids)
	for k, i in zip(rest, ids): v[k] = i
	json.dump(t, open("shuffled/tokenizer.json", "w"), ensure_ascii=False)
	PY
	test_must_fail mlc-check --raw --library m/m-cpu.tar --model shuffled <"$TRASH/.empty" >rec.mp 2>err &&
	test "$(diagnosis rec.mp)" = config/tokenizer &&
	test_grep "the model cannot read the tokenized prompt" err &&
	test_grep "likely stage: config/tokenizer" err &&
	test "$(record_field rec.mp check "min(p[\"figures\"][\"prompt_perplexity\"] for p in r[\"prompts\"]) > 512")" = True
'

test_expect_success 'q3f16_1 of a tiny model: degraded against the reference, with its KL' '
	build_model "$STORIES" q3f16_1 q3 &&
	test_must_fail mlc-check --raw --reference "$STORIES" <q3.mp >rec.mp 2>err &&
	test "$(diagnosis rec.mp)" = quantization &&
	test_grep "against the reference: KL [0-9.]* nats .*(degraded)" err &&
	test "$(record_field rec.mp check "r[\"reference\"][\"kl_mean\"] > 1.0 and r[\"reference\"][\"top1_agreement\"] < 0.5")" = True &&
	test "$(record_field rec.mp check "r[\"reference\"][\"perplexity\"] > 2 * r[\"reference\"][\"perplexity_reference\"]")" = True
'

test_expect_success 'q3f16_1 without a reference: a stumbling model that reads its prompt is quantization' '
	test_must_fail mlc-check <q3.mp >rec.mp 2>err &&
	test_grep "stumbles over the prompt" err &&
	test_lacks "cannot read the tokenized prompt" err &&
	test_grep "likely stage: quantization" err &&
	test "$(diagnosis rec.mp)" = quantization &&
	test "$(record_field rec.mp check "all(p[\"evidence\"][\"tokenizer_round_trips\"] for p in r[\"prompts\"] if not p[\"pass\"])")" = True
'

test_expect_success 'a random model as incoherent as its reference: the source model, not quantization' '
	mkmodel --arch qwen2 --tokenizer "$STORIES" -o qw >/dev/null &&
	build_model qw q4f16_1 qwq &&
	test_must_fail mlc-check --reference qw <qwq.mp >rec.mp 2>err &&
	test_grep "the unquantized reference fails the same way" err &&
	test_grep "likely stage: source model" err &&
	test "$(diagnosis rec.mp)" = "source model" &&
	test "$(record_field rec.mp check "r[\"reference\"][\"top1_agreement\"] > 0.9")" = True &&
	test "$(record_field rec.mp check "all(p[\"evidence\"][\"reference_fails_too\"] for p in r[\"prompts\"])")" = True
'

test_expect_success 'KL per prompt with percentiles, as llama-perplexity --kl-divergence prints them' '
	mlc-check --raw --reference "$STORIES" <q3.mp >rec.mp 2>err || : &&
	test_grep "KL per token: 99.9% [0-9.]*, 99% [0-9.]*, median [0-9.]*, min [0-9.]* (64 tokens)" err &&
	test_grep "KL divergence over every answer token: mean" err &&
	test "$(record_field rec.mp check "all(p[\"kl\"][\"min\"] <= p[\"kl\"][\"median\"] <= p[\"kl\"][\"p99\"] <= p[\"kl\"][\"p99.9\"] <= p[\"kl\"][\"max\"] and abs(p[\"kl\"][\"mean\"] - p[\"kl_mean\"]) < 1e-9 for p in r[\"prompts\"])")" = True
'

test_expect_success '--plot draws KL per answer token as PNG and as SVG' '
	mlc-check -q --raw --reference "$STORIES" --plot kl.png <q3.mp >rec.mp || : &&
	mlc-check -q --raw --reference "$STORIES" --plot kl.svg <q3.mp >rec.mp || : &&
	$PYTHON - <<-PY
	import struct, xml.etree.ElementTree as ET
	png = open("kl.png", "rb").read()
	assert png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", png[:8]
	assert struct.unpack(">II", png[16:24]) == (800, 450)
	svg = ET.parse("kl.svg").getroot()
	assert svg.tag.endswith("svg") and svg.get("width").startswith("800"), svg.attrib
	PY
	test_must_fail mlc-check --plot kl.gif --reference "$STORIES" <q3.mp 2>err &&
	test_grep "draw a .png or an .svg" err
'

test_expect_success 'a truncated shard: load error naming the file' '
	cp -r m cut &&
	size=$(wc -c <cut/params_shard_0.bin) &&
	truncate -s $((size - 100)) cut/params_shard_0.bin &&
	test_must_fail mlc-check --library m/m-cpu.tar --model cut <"$TRASH/.empty" >rec.mp 2>err &&
	test_grep "params_shard_0.bin" err &&
	test "$(diagnosis rec.mp)" = weights
'

test_expect_success 'a damaged shard of the right length is caught by --verify (md5)' '
	cp -r m flipped &&
	printf "\377" | dd of=flipped/params_shard_0.bin bs=1 seek=100 conv=notrunc 2>/dev/null &&
	mlc-check -q --raw --greedy --prompt Once --library m/m-cpu.tar --model flipped <"$TRASH/.empty" >/dev/null &&
	test_must_fail mlc-check --verify --raw --library m/m-cpu.tar --model flipped <"$TRASH/.empty" >rec.mp 2>err &&
	test_grep "params_shard_0.bin: md5 [0-9a-f]*, but tensor-cache.json says" err &&
	test "$(diagnosis rec.mp)" = weights
'

test_expect_success 'an uncalibrated FP8 model is refused instead of printing garbage' '
	build_model "$STORIES" e4m3_e4m3_f16 fp8 &&
	test_must_fail mlc-check --raw <fp8.mp >rec.mp 2>err &&
	test_grep "q_calibration_scale is uncalibrated" err &&
	test "$(record_field rec.mp check "r[\"pass\"]")" = False &&
	test "$(diagnosis rec.mp)" = calibration
'

test_done
