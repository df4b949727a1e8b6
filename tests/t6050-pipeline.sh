#!/bin/sh
# The whole workflow as a shell pipe (scripts/pipeline.sh) and as a make
# graph (scripts/model.mk): same results, reproducible files, nothing
# rebuilt when nothing changed.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'one shell pipe from the model to the verdict' '
	"$SRC_DIR/scripts/pipeline.sh" "$STORIES" q0f32 piped --raw --greedy --prompt "" --max-tokens 60 2>err &&
	mlc-dump piped.stream.mp | sed -e "s/^{\"type\":\"\([a-z]*\)\".*/\1/" | uniq >types &&
	printf "model\nconfig\ntensor\nweights\nmodule\nlibrary\ncheck\n" >want &&
	test_cmp want types &&
	ids=$(record_field piped.stream.mp check "\",\".join(map(str, r[\"prompts\"][0][\"prompt_ids\"] + r[\"prompts\"][0][\"ids\"]))") &&
	test "$ids" = "$STORIES_IDS" &&
	test_grep "1 of 1 prompts pass" err
'

test_expect_success 'pipeline.sh creates OUT and its parents; a failure is one message naming the stage' '
	"$SRC_DIR/scripts/pipeline.sh" "$STORIES" q0f32 deep/er/out --raw --greedy --prompt Once --max-tokens 4 2>err &&
	test -f deep/er/out/mlc-chat-config.json && test -f deep/er/out.stream.mp &&
	test_must_fail "$SRC_DIR/scripts/pipeline.sh" "$TRASH/no-model" q0f32 x 2>err &&
	test_grep "mlc-fetch: error: .*no-model" err &&
	test_grep "pipeline.sh: stopped at mlc-fetch (exit status 1)" err &&
	test_line_count = 2 err &&
	test_must_fail "$SRC_DIR/scripts/pipeline.sh" "$STORIES" q4f16_ft y 2>err &&
	test_grep "stopped at mlc-cfg (exit status 2)" err && test_lacks "^mlc-quant:" err && test_lacks "^mlc-fetch" err
'

# the model is copied: the tests touch its files
cp -r "$STORIES" model
mk () { make -s --no-print-directory -f "$SRC_DIR/scripts/model.mk" MODEL=model BIN="$MLC_BUILD/bin/" "$@"; }
# run make, and list the tools it ran, one per line (bin/mlc-X)
ran () {
	make --no-print-directory -f "$SRC_DIR/scripts/model.mk" MODEL=model BIN="$MLC_BUILD/bin/" "$@" >make.out &&
	{ grep -o "bin/mlc-[a-z]*" make.out || :; } >ran
}

test_expect_success 'the make graph builds every file and checks the model' '
	mk OUT=dist/a CHECK_FLAGS="-q --raw" check &&
	test -f dist/a/mlc-chat-config.json && test -f dist/a/tensor-cache.json && test -f dist/a/a-cpu.tar &&
	test "$(record_field dist/a/check.mp check "r[\"pass\"]")" = True
'

test_expect_success 'a second make does nothing' '
	ran OUT=dist/a && test_must_be_empty ran &&
	test_grep "Nothing to be done" make.out
'

test_expect_success 'a touched config reruns what reads it; an identical module stops the chain' '
	cp dist/a/a-cpu.tar before.tar &&
	sleep 1 && touch dist/a/mlc-chat-config.json &&
	ran OUT=dist/a &&
	printf "bin/mlc-quant\nbin/mlc-lower\n" >want && test_cmp want ran &&
	cmp before.tar dist/a/a-cpu.tar &&
	ran OUT=dist/a && test_must_be_empty ran
'

test_expect_success 'a touched tokenizer.json or generation_config.json reruns mlc-cfg alone' '
	ls -l --time-style=full-iso dist/a/mlc-chat-config.json dist/a/tensor-cache.json >mtimes &&
	sleep 1 && touch model/tokenizer.json model/generation_config.json &&
	ran OUT=dist/a &&
	echo bin/mlc-cfg >want && test_cmp want ran &&
	ls -l --time-style=full-iso dist/a/mlc-chat-config.json dist/a/tensor-cache.json >mtimes.after &&
	test_cmp mtimes mtimes.after &&
	ran OUT=dist/a && test_must_be_empty ran
'

test_expect_success 'touched weights rerun mlc-quant and mlc-lower, not mlc-cfg' '
	sleep 1 && touch model/model.safetensors &&
	ran OUT=dist/a &&
	printf "bin/mlc-quant\nbin/mlc-lower\n" >want && test_cmp want ran
'

test_expect_success 'another QUANT with the same OUT rebuilds everything with the new scheme' '
	ran OUT=dist/a QUANT=q0f32 &&
	printf "bin/mlc-cfg\nbin/mlc-quant\nbin/mlc-lower\nbin/mlc-emit\n" >want && test_cmp want ran &&
	test "$($PYTHON -c "import json; print(json.load(open(\"dist/a/mlc-chat-config.json\"))[\"quantization\"])")" = q0f32 &&
	ran OUT=dist/a QUANT=q0f32 && test_must_be_empty ran &&
	ran OUT=dist/a && test_grep -c bin/mlc-emit ran
'

test_expect_success '--depfile: each stage lists the files it read, in make syntax' '
	cat dist/a/.stamp-config.d &&
	test_grep "^dist/a/.stamp-config: \\\\$" dist/a/.stamp-config.d &&
	for f in config.json tokenizer.json generation_config.json tokenizer_config.json; do
		test_grep "^  model/$f" dist/a/.stamp-config.d || return 1
	done &&
	test_lacks safetensors dist/a/.stamp-config.d &&
	test_grep "^  model/model.safetensors$" dist/a/.stamp-weights.d &&
	test_grep "^  dist/a/mlc-chat-config.json" dist/a/.stamp-weights.d &&
	test_grep "^  dist/a/tensor-cache.json$" dist/a/.stamp-module.d &&
	test_grep "^  dist/a/module.mp$" dist/a/.stamp-library.d
'

test_expect_success 'scripts/build.ninja: the same rebuild sets with ninja' '
	sed -e "s|^model = .*|model = model|" -e "s|^out_dir = .*|out_dir = nj|" \
		-e "s|^bin =.*|bin = $MLC_BUILD/bin/|" "$SRC_DIR/scripts/build.ninja" >b.ninja &&
	ninja -f b.ninja >out && test_grep -c "mlc-emit nj/model-cpu.tar" out &&
	ninja -f b.ninja >out && test_grep "no work to do" out &&
	sleep 1 && touch model/tokenizer.json &&
	ninja -f b.ninja >out && test_grep "mlc-cfg" out && test_lacks mlc-quant out &&
	ninja -f b.ninja >out && test_grep "no work to do" out &&
	touch model/model.safetensors &&
	ninja -f b.ninja >out && test_grep mlc-quant out && test_grep mlc-lower out && test_lacks mlc-emit out &&
	cmp nj/model-cpu.tar dist/a/a-cpu.tar &&
	sed -i -e "s/^quant = .*/quant = q0f32/" b.ninja &&
	ninja -f b.ninja >out && test_grep -c mlc-emit out &&
	test_grep "\"quantization\": \"q0f32\"" nj/mlc-chat-config.json
'

test_expect_success 'the pipe and the make graph write the same files, byte for byte' '
	mk OUT=dist/piped-twin QUANT=q4f16_1 &&
	for f in mlc-chat-config.json tensor-cache.json params_shard_0.bin tokenizer.json; do
		cmp dist/piped-twin/$f dist/a/$f || return 1
	done &&
	build_model "$STORIES" q4f16_1 dist/b &&
	cmp dist/a/tensor-cache.json dist/b/tensor-cache.json &&
	cmp dist/a/params_shard_0.bin dist/b/params_shard_0.bin &&
	cmp dist/a/a-cpu.tar dist/b/b-cpu.tar
'

test_done
