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

mk () { make -s --no-print-directory -f "$SRC_DIR/scripts/model.mk" MODEL="$STORIES" BIN="$MLC_BUILD/bin/" "$@"; }
# what make would run (the tools are named by their path: bin/mlc-X)
plan () { make -n --no-print-directory -f "$SRC_DIR/scripts/model.mk" MODEL="$STORIES" BIN="$MLC_BUILD/bin/" "$@"; }

test_expect_success 'the make graph builds every file and checks the model' '
	mk OUT=dist/a CHECK_FLAGS="-q --raw" check &&
	test -f dist/a/mlc-chat-config.json && test -f dist/a/tensor-cache.json && test -f dist/a/a-cpu.tar &&
	test "$(record_field dist/a/check.mp check "r[\"pass\"]")" = True
'

test_expect_success 'a second make does nothing; a changed config rebuilds the rest' '
	mk OUT=dist/a >out 2>&1 && test_must_be_empty out &&
	plan OUT=dist/a >plan &&
	test_lacks bin/mlc- plan &&
	cp dist/a/a-cpu.tar before.tar &&
	touch dist/a/mlc-chat-config.json &&
	plan OUT=dist/a >plan &&
	test_grep bin/mlc-quant plan && test_grep bin/mlc-lower plan && test_grep bin/mlc-emit plan &&
	test_lacks bin/mlc-cfg plan &&
	mk OUT=dist/a && cmp before.tar dist/a/a-cpu.tar
'

test_expect_success 'the pipe and the make graph write the same files, byte for byte' '
	mk OUT=dist/piped-twin &&
	for f in mlc-chat-config.json tensor-cache.json params_shard_0.bin tokenizer.json; do
		cmp dist/piped-twin/$f dist/a/$f || return 1
	done &&
	build_model "$STORIES" q4f16_1 dist/b &&
	cmp dist/a/tensor-cache.json dist/b/tensor-cache.json &&
	cmp dist/a/params_shard_0.bin dist/b/params_shard_0.bin &&
	cmp dist/a/a-cpu.tar dist/b/b-cpu.tar
'

test_done
