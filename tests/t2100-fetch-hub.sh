#!/bin/sh
# mlc-fetch against a fake HuggingFace hub: the hub protocol, the cache
# entry it fills, revisions, the file selection, MLC repositories.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

TINY_FILES="config.json generation_config.json model.safetensors special_tokens_map.json
tokenizer.json tokenizer.model tokenizer_config.json"

# Repositories: stories260K with files the pipeline does not want beside it;
# another revision of it; a sharded model with a stray weight file no index
# names; a pre-converted MLC repository.
cp -R "$FIXTURES/stories260K" tiny
echo "*.safetensors filter=lfs" >tiny/.gitattributes
echo "not a real gguf" >tiny/model-q4_0.gguf
mkdir tiny/onnx && echo "not onnx" >tiny/onnx/model.onnx
printf 'PK\003\004not really a checkpoint' >tiny/pytorch_model.bin
mkmodel --arch llama --tokenizer "$FIXTURES/stories260K" -o tinyv1
mkmodel --arch mistral --shards 3 --tokenizer "$FIXTURES/stories260K" -o sharded
cp sharded/model-00001-of-00003.safetensors sharded/consolidated.safetensors
$PYTHON "$SRC_DIR/tests/helpers/mkmlc.py" mlcrepo --tokenizer "$FIXTURES/stories260K"
cp -R "$FIXTURES/stories260K" empty && : >empty/added_tokens.json
start_hub hub --cdn --repo org/tiny=tiny --repo org/tiny@v1=tinyv1 \
	--repo "org/tiny@refs/pr/1=tinyv1" --repo org/sharded=sharded --repo mlc-ai/tiny-MLC=mlcrepo \
	--repo org/empty=empty

ENTRY="$MLC_LLM_HOME/model_weights/hf/org/tiny"

# api_sha REPO REV: the commit the hub's API gives, asked with curl.
api_sha () {
	rev=$(printf %s "$2" | sed "s#/#%2F#g")
	curl -sf "$HF_ENDPOINT/api/models/$1/revision/$rev" |
		$PYTHON -c "import json, sys; print(json.load(sys.stdin)[\"sha\"])"
}

test_expect_success 'a hub model downloads into the cache entry, and the record says so' '
	mlc-fetch HF://org/tiny <"$NO_STREAM" >out.mp 2>err &&
	test "$(model_field source out.mp)" = HF://org/tiny &&
	test "$(model_field kind out.mp)" = hf &&
	test "$(model_field format out.mp)" = safetensors &&
	test "$(model_field revision out.mp)" = main &&
	test "$(model_field commit out.mp)" = "$(api_sha org/tiny main)" &&
	test "$(model_field path out.mp)" = "$ENTRY" &&
	record_files out.mp >got &&
	expect_files tiny $TINY_FILES >want &&
	test_cmp want got &&
	for f in $TINY_FILES; do cmp "tiny/$f" "$ENTRY/$f" || return 1; done &&
	tail -n 1 err >path && echo "$ENTRY" >want && test_cmp want path
'

test_expect_success 'the entry holds only the selected files and a manifest' '
	(cd "$ENTRY" && ls -A) >got &&
	printf "%s\n" .mlc-fetch.json $TINY_FILES | sort >want &&
	test_cmp want got &&
	ls -A "$MLC_LLM_HOME/model_weights/hf/org" >dirs &&
	echo tiny >want && test_cmp want dirs
'

test_expect_success 'the hub protocol: one blobs=true listing, every file from its commit' '
	sha=$(api_sha org/tiny main) &&
	test "$(hub_count "\"path\": \"/api/models/org/tiny/revision/main?blobs=true\"")" = 1 &&
	for f in $TINY_FILES; do
		test "$(hub_count "\"path\": \"/org/tiny/resolve/$sha/$f\"")" = 1 || return 1
	done &&
	test "$(hub_count "/resolve/")" = 7 &&
	test "$(hub_count "\"server\": \"cdn\"")" = 2 &&
	test "$(hub_count "gguf")" = 0 && test "$(hub_count "onnx")" = 0 &&
	test "$(hub_count "pytorch_model")" = 0 && test "$(hub_count "README")" = 0
'

test_expect_success 'a cache hit touches no network and gives the same record' '
	hub_reset &&
	mlc-fetch HF://org/tiny <"$NO_STREAM" >hit.mp 2>err &&
	test "$(hub_count "\"method\"")" = 0 &&
	cmp out.mp hit.mp
'

test_expect_success 'the https:// form of the same repository uses the same entry' '
	mlc-fetch -q https://huggingface.co/org/tiny <"$NO_STREAM" >url.mp &&
	test "$(hub_count "\"method\"")" = 0 &&
	test "$(model_field path url.mp)" = "$ENTRY" &&
	test "$(model_field source url.mp)" = https://huggingface.co/org/tiny &&
	mlc-fetch -q "$HF_ENDPOINT/org/tiny/" <"$NO_STREAM" >url2.mp &&
	test "$(model_field path url2.mp)" = "$ENTRY"
'

test_expect_success 'a pinned revision gets its own entry with its own files' '
	mlc-fetch -q HF://org/tiny@v1 <"$NO_STREAM" >v1.mp &&
	test "$(model_field path v1.mp)" = "$ENTRY@v1" &&
	test "$(model_field revision v1.mp)" = v1 &&
	test "$(model_field commit v1.mp)" = "$(api_sha org/tiny v1)" &&
	test "$(model_field commit v1.mp)" != "$(model_field commit out.mp)" &&
	cmp tinyv1/model.safetensors "$ENTRY@v1/model.safetensors" &&
	cmp tiny/model.safetensors "$ENTRY/model.safetensors" &&
	hub_reset &&
	mlc-fetch -q https://huggingface.co/org/tiny/tree/v1 <"$NO_STREAM" >v1url.mp &&
	test "$(hub_count "\"method\"")" = 0 &&
	test "$(model_field path v1url.mp)" = "$ENTRY@v1"
'

test_expect_success 'a commit id pins exactly that commit' '
	sha=$(api_sha org/tiny v1) &&
	mlc-fetch -q "HF://org/tiny@$sha" <"$NO_STREAM" >sha.mp &&
	test "$(model_field path sha.mp)" = "$ENTRY@$sha" &&
	test "$(model_field commit sha.mp)" = "$sha" &&
	test "$(hub_count "/revision/$sha?blobs=true")" = 1
'

test_expect_success 'a revision with a slash is %-encoded in the URL and the entry name' '
	hub_reset &&
	mlc-fetch -q "HF://org/tiny@refs/pr/1" <"$NO_STREAM" >pr.mp &&
	test "$(model_field path pr.mp)" = "$ENTRY@refs%2Fpr%2F1" &&
	test "$(model_field revision pr.mp)" = refs/pr/1 &&
	test "$(hub_count "/revision/refs%2Fpr%2F1?blobs=true")" = 1 &&
	mlc-fetch -q "https://huggingface.co/org/tiny/tree/refs%2Fpr%2F1" <"$NO_STREAM" >pr2.mp &&
	test "$(model_field path pr2.mp)" = "$ENTRY@refs%2Fpr%2F1"
'

test_expect_success 'without MLC_LLM_HOME the cache is under XDG_CACHE_HOME, then HOME' '
	(unset MLC_LLM_HOME && XDG_CACHE_HOME="$TRASH/xdg" mlc-fetch -q HF://org/tiny <"$NO_STREAM" >xdg.mp) &&
	test "$(model_field path xdg.mp)" = "$TRASH/xdg/mlc_llm/model_weights/hf/org/tiny" &&
	(unset MLC_LLM_HOME XDG_CACHE_HOME && HOME="$TRASH/h2" && mkdir -p "$HOME" &&
	 mlc-fetch -q HF://org/tiny <"$NO_STREAM" >home.mp) &&
	test "$(model_field path home.mp)" = "$TRASH/h2/.cache/mlc_llm/model_weights/hf/org/tiny"
'

test_expect_success 'sharded weights: the index first, then exactly the shards it names' '
	hub_reset &&
	mlc-fetch -q HF://org/sharded <"$NO_STREAM" >sh.mp &&
	record_files sh.mp >got &&
	expect_files sharded config.json generation_config.json model.safetensors.index.json \
		model-00001-of-00003.safetensors model-00002-of-00003.safetensors \
		model-00003-of-00003.safetensors special_tokens_map.json tokenizer.json tokenizer.model \
		tokenizer_config.json >want &&
	test_cmp want got &&
	test "$(hub_count consolidated)" = 0 &&
	grep -n "index.json\|of-00003" "$HUB_STATE/requests.log" | grep "resolve" >order &&
	head -n 1 order | test_grep "model.safetensors.index.json"
'

test_expect_success 'an MLC repository: shards from its tensor cache, md5 checked' '
	mlc-fetch -q HF://mlc-ai/tiny-MLC <"$NO_STREAM" >mlc.mp &&
	test "$(model_field kind mlc.mp)" = mlc &&
	test "$(model_field format mlc.mp)" = mlc &&
	test "$(model_field path mlc.mp)" = "$MLC_LLM_HOME/model_weights/hf/mlc-ai/tiny-MLC" &&
	record_files mlc.mp >got &&
	expect_files mlcrepo mlc-chat-config.json params_shard_0.bin params_shard_1.bin \
		tensor-cache.json tokenizer.json tokenizer.model >want &&
	test_cmp want got
'

test_expect_success '--include fetches more, --exclude less' '
	MLC_LLM_HOME="$TRASH/inc" mlc-fetch -q --include "*.gguf" --include "onnx/*" \
		--exclude "tokenizer.model" HF://org/tiny <"$NO_STREAM" >inc.mp &&
	record_files inc.mp | cut -d" " -f1 >got &&
	printf "%s\n" config.json generation_config.json model-q4_0.gguf model.safetensors \
		onnx/model.onnx special_tokens_map.json tokenizer.json tokenizer_config.json >want &&
	test_cmp want got &&
	cmp tiny/onnx/model.onnx "$TRASH/inc/model_weights/hf/org/tiny/onnx/model.onnx"
'

test_expect_success 'an entry fetched with other options is used as it is, with a warning' '
	MLC_LLM_HOME="$TRASH/inc" mlc-fetch HF://org/tiny <"$NO_STREAM" >inc2.mp 2>err &&
	test_grep "warning: .*/org/tiny was fetched with other --include/--exclude options" err &&
	record_files inc.mp >a && record_files inc2.mp >b && test_cmp a b
'

test_expect_success 'the download shows a progress meter only when asked for a terminal' '
	hub_faults "[{\"path\": \"/lfs/*/model.safetensors\", \"rate\": 2000000}]" &&
	MLC_PROGRESS=always MLC_LLM_HOME="$TRASH/p1" mlc-fetch HF://org/tiny <"$NO_STREAM" >p.mp 2>err &&
	hub_faults "[]" &&
	tr "\r" "\n" <err >lines &&
	test_grep "HF://org/tiny: *[0-9.]*% [0-9.]* [kM]B / 1.07 MB, [0-9.]* [kM]B/s, ETA 0:0[0-9]" lines &&
	test_grep "HF://org/tiny: 100.0% 1.07 MB / 1.07 MB, [0-9.]* [kM]B/s *$" lines &&
	MLC_LLM_HOME="$TRASH/p2" mlc-fetch HF://org/tiny <"$NO_STREAM" >p.mp 2>err &&
	! grep "B/s" err &&
	MLC_PROGRESS=always MLC_LLM_HOME="$TRASH/p3" mlc-fetch -q HF://org/tiny <"$NO_STREAM" >p.mp 2>err &&
	test ! -s err
'

test_expect_success 'downloads are deterministic: two caches hold identical trees and records' '
	MLC_LLM_HOME="$TRASH/d1" mlc-fetch -q -j 1 HF://org/sharded <"$NO_STREAM" >d1.mp &&
	MLC_LLM_HOME="$TRASH/d2" mlc-fetch -q -j 8 HF://org/sharded <"$NO_STREAM" >d2.mp &&
	diff -r "$TRASH/d1/model_weights/hf/org/sharded" "$TRASH/d2/model_weights/hf/org/sharded" &&
	sed "s#$TRASH/d1#X#" d1.mp >x1 && sed "s#$TRASH/d2#X#" d2.mp >x2 && cmp x1 x2
'

test_expect_success 'empty files download and verify (sha256 and git blob id of nothing)' '
	mlc-fetch -q HF://org/empty <"$NO_STREAM" >empty.mp &&
	record_files empty.mp | grep added_tokens.json >got &&
	echo "added_tokens.json 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" >want &&
	test_cmp want got &&
	test -f "$MLC_LLM_HOME/model_weights/hf/org/empty/added_tokens.json" &&
	test ! -s "$MLC_LLM_HOME/model_weights/hf/org/empty/added_tokens.json"
'

test_expect_success 'sources that are not hub models are refused before any request' '
	hub_reset &&
	for bad in "HF://org" "HF://a/b/c" "HF://org/na me" "HF://../etc" "HF://org/name@" \
		"HF://org/..@main" "https://huggingface.co/datasets/org/name" \
		"https://huggingface.co/org/name/blob/main/config.json" "https://example.com/org/name" \
		"file://host/x"; do
		test_must_fail mlc-fetch "$bad" <"$NO_STREAM" >out 2>err &&
		test_grep "error: " err && test ! -s out || return 1
	done &&
	test "$(hub_count "\"method\"")" = 0
'

test_done
