#!/bin/sh
# mlc-fetch on local directories: the record, the file selection, and the
# checks that refuse a directory the pipeline could not use.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

TINY="$FIXTURES/stories260K"
TINY_FILES="config.json generation_config.json model.safetensors special_tokens_map.json
tokenizer.json tokenizer.model tokenizer_config.json"

test_expect_success 'a HuggingFace directory gives a model record with every needed file' '
	mlc-fetch "$TINY" <"$NO_STREAM" >out.mp 2>err &&
	test "$(model_field type out.mp)" = model &&
	test "$(model_field source out.mp)" = "$TINY" &&
	test "$(model_field kind out.mp)" = hf &&
	test "$(model_field format out.mp)" = safetensors &&
	test "$(model_field revision out.mp)" = null &&
	test "$(model_field commit out.mp)" = null &&
	test "$(model_field path out.mp)" = "$(cd "$TINY" && pwd -P)" &&
	record_files out.mp >got &&
	expect_files "$TINY" $TINY_FILES >want &&
	test_cmp want got
'

test_expect_success 'the path alone goes to stderr, and -q silences it' '
	echo "$(cd "$TINY" && pwd -P)" >want &&
	test_cmp want err &&
	mlc-fetch -q "$TINY" <"$NO_STREAM" >out2.mp 2>err2 &&
	test ! -s err2 &&
	cmp out.mp out2.mp
'

test_expect_success 'file:// URLs and relative paths name the same directory' '
	cp -R "$TINY" "my model" &&
	mlc-fetch -q "my model" <"$NO_STREAM" >rel.mp &&
	mlc-fetch -q "file://$PWD/my%20model" <"$NO_STREAM" >url.mp &&
	mlc-fetch -q "file:$PWD/my model" <"$NO_STREAM" >url2.mp &&
	test "$(model_field path rel.mp)" = "$(pwd -P)/my model" &&
	test "$(model_field path url.mp)" = "$(pwd -P)/my model" &&
	test "$(model_field source url.mp)" = "file://$PWD/my%20model" &&
	record_files rel.mp >a && record_files url.mp >b && record_files url2.mp >c &&
	test_cmp a b && test_cmp a c
'

test_expect_success 'records on stdin pass through unchanged, before the model record' '
	printf "%s\n" "{\"type\":\"note\",\"text\":\"earlier stage\"}" "{\"type\":\"model\",\"path\":\"/old\"}" >in.jsonl &&
	mlc-dump --pack in.jsonl >in.mp &&
	mlc-fetch -q "$TINY" <in.mp >piped.mp &&
	size=$(wc -c <in.mp | tr -d " ") &&
	head -c "$size" piped.mp >prefix && cmp in.mp prefix &&
	mlc-dump piped.mp >lines && test_line_count = 3 lines &&
	test "$(model_field path piped.mp)" = "$(cd "$TINY" && pwd -P)"
'

test_expect_success '--stream writes the records to a file instead of stdout' '
	mlc-fetch -q --stream s.mp "$TINY" <"$NO_STREAM" >stdout &&
	test ! -s stdout &&
	cmp out.mp s.mp
'

test_expect_success 'the same directory gives byte-identical records' '
	mlc-fetch -q "$TINY" <"$NO_STREAM" >again.mp && cmp out.mp again.mp
'

test_expect_success 'sharded safetensors: the index and every shard it names' '
	mkmodel --arch qwen2 --shards 3 -o sharded &&
	cp "$TINY/tokenizer.json" sharded/ &&
	echo "junk" >sharded/README.md &&
	mlc-fetch -q sharded <"$NO_STREAM" >sh.mp &&
	record_files sh.mp >got &&
	expect_files sharded config.json generation_config.json model.safetensors.index.json \
		model-00001-of-00003.safetensors model-00002-of-00003.safetensors \
		model-00003-of-00003.safetensors tokenizer.json >want &&
	test_cmp want got
'

test_expect_success 'safetensors are preferred when .bin files are there too' '
	cp -R sharded both &&
	$PYTHON "$SRC_DIR/tests/helpers/st2bin.py" both --shards 2 &&
	test -f both/pytorch_model.bin.index.json &&
	mlc-fetch -q both <"$NO_STREAM" >both.mp &&
	test "$(model_field format both.mp)" = safetensors &&
	record_files both.mp >got && ! grep "\.bin" got
'

test_expect_success 'PyTorch checkpoints are taken when they are all there is' '
	mkdir pt && cp both/config.json both/pytorch_model* pt/ &&
	mlc-fetch -q pt <"$NO_STREAM" >pt.mp &&
	test "$(model_field format pt.mp)" = pytorch &&
	record_files pt.mp >got &&
	expect_files pt config.json pytorch_model-00001-of-00002.bin pytorch_model-00002-of-00002.bin \
		pytorch_model.bin.index.json >want &&
	test_cmp want got
'

test_expect_success '--include adds files and --exclude removes them' '
	mkdir extra && cp "$TINY"/* extra/ && echo gguf >extra/model-q4.gguf &&
	mkdir extra/onnx && echo onnx >extra/onnx/model.onnx &&
	mlc-fetch -q --include "*.gguf" -I "onnx/*" --exclude tokenizer.model extra <"$NO_STREAM" >inc.mp &&
	record_files inc.mp | cut -d" " -f1 >got &&
	printf "%s\n" config.json generation_config.json model-q4.gguf model.safetensors onnx/model.onnx \
		special_tokens_map.json tokenizer.json tokenizer_config.json >want &&
	test_cmp want got
'

test_expect_success 'excluding a file the model needs is an error' '
	test_must_fail mlc-fetch --exclude "*.safetensors" "$TINY" <"$NO_STREAM" >out 2>err &&
	test_grep "error: $TINY: --exclude removes model.safetensors, which the model needs" err &&
	test ! -s out
'

test_expect_success 'an HF-cache snapshot of symbolic links is read through the links' '
	mkdir -p blobs snap &&
	for f in $TINY_FILES; do cp "$TINY/$f" "blobs/$f.blob" && ln -s "../blobs/$f.blob" "snap/$f"; done &&
	mlc-fetch -q snap <"$NO_STREAM" >snap.mp &&
	record_files snap.mp >got && expect_files "$TINY" $TINY_FILES >want && test_cmp want got
'

test_expect_success 'a pre-converted MLC directory: config, tensor cache, shards, tokenizer' '
	$PYTHON "$SRC_DIR/tests/helpers/mkmlc.py" mlc --tokenizer "$TINY" &&
	mlc-fetch -q mlc <"$NO_STREAM" >mlc.mp &&
	test "$(model_field kind mlc.mp)" = mlc &&
	test "$(model_field format mlc.mp)" = mlc &&
	record_files mlc.mp >got &&
	expect_files mlc mlc-chat-config.json params_shard_0.bin params_shard_1.bin tensor-cache.json \
		tokenizer.json tokenizer.model >want &&
	test_cmp want got
'

test_expect_success 'the older tensor cache name ndarray-cache.json is read too' '
	$PYTHON "$SRC_DIR/tests/helpers/mkmlc.py" old --old-name --shards 1 &&
	mlc-fetch -q old <"$NO_STREAM" >old.mp &&
	record_files old.mp | cut -d" " -f1 >got &&
	printf "%s\n" mlc-chat-config.json ndarray-cache.json params_shard_0.bin >want &&
	test_cmp want got
'

test_expect_success 'an MLC shard whose md5 differs from tensor-cache.json is refused' '
	cp -R mlc badmd5 &&
	printf "\377" | dd of=badmd5/params_shard_1.bin bs=1 seek=100 conv=notrunc 2>/dev/null &&
	want=$($PYTHON -c "import json; print(json.load(open(\"mlc/tensor-cache.json\"))[\"records\"][1][\"md5sum\"])") &&
	got=$(md5sum badmd5/params_shard_1.bin | cut -d" " -f1) &&
	test_must_fail mlc-fetch badmd5 <"$NO_STREAM" >out 2>err &&
	test_grep "error: badmd5/params_shard_1.bin: md5 mismatch: tensor-cache.json says $want, the file has $got" err &&
	test ! -s out
'

test_expect_success 'an MLC shard of the wrong size is refused' '
	cp -R mlc short && head -c 1000 mlc/params_shard_0.bin >short/params_shard_0.bin &&
	test_must_fail mlc-fetch short <"$NO_STREAM" 2>err &&
	test_grep "short/params_shard_0.bin: 1000 bytes, but tensor-cache.json says 40000" err
'

test_expect_success 'a Git LFS pointer instead of the weights is named, with the fix' '
	cp -R "$TINY" lfs &&
	printf "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 1044992\n" \
		407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd >lfs/model.safetensors &&
	test_must_fail mlc-fetch lfs <"$NO_STREAM" >out 2>err &&
	test_grep "error: lfs/model.safetensors: a Git LFS pointer, not the real file: install git-lfs and run .git lfs pull. in the repository" err &&
	test ! -s out
'

test_expect_success 'an LFS pointer in place of an index is reported as such too' '
	cp -R sharded lfsidx &&
	printf "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n" >lfsidx/model.safetensors.index.json &&
	test_must_fail mlc-fetch lfsidx <"$NO_STREAM" 2>err &&
	test_grep "lfsidx/model.safetensors.index.json: a Git LFS pointer" err
'

test_expect_success 'config.json that is not JSON is located by line and column' '
	cp -R "$TINY" badjson && printf "{\n  \"a\": 1,\n  oops\n}\n" >badjson/config.json &&
	test_must_fail mlc-fetch badjson <"$NO_STREAM" 2>err &&
	test_grep "error: badjson/config.json:3:" err
'

test_expect_success 'missing, empty and truncated weights are refused' '
	cp -R sharded missing && rm missing/model-00002-of-00003.safetensors &&
	test_must_fail mlc-fetch missing <"$NO_STREAM" 2>err &&
	test_grep "error: missing: model.safetensors.index.json names model-00002-of-00003.safetensors, which is not in the repository" err &&
	cp -R "$TINY" empty && : >empty/model.safetensors &&
	test_must_fail mlc-fetch empty <"$NO_STREAM" 2>err &&
	test_grep "empty/model.safetensors: empty weight file" err &&
	cp -R "$TINY" cut && head -c 1000000 "$TINY/model.safetensors" >cut/model.safetensors &&
	test_must_fail mlc-fetch cut <"$NO_STREAM" 2>err &&
	test_grep "cut/model.safetensors: tensor .* end past the .*-byte data section (truncated file?)" err
'

test_expect_success 'an index whose total_size or weight_map disagrees with the files is refused' '
	cp -R sharded total &&
	$PYTHON - <<-PY &&
	import json
	p = "total/model.safetensors.index.json"; j = json.load(open(p))
	j["metadata"]["total_size"] += 2; json.dump(j, open(p, "w"), indent=2)
	PY
	test_must_fail mlc-fetch total <"$NO_STREAM" 2>err &&
	test_grep "total/model.safetensors.index.json: metadata.total_size is [0-9]* but the weight files hold [0-9]* bytes of tensors" err &&
	cp -R sharded moved &&
	$PYTHON - <<-PY &&
	import json
	p = "moved/model.safetensors.index.json"; j = json.load(open(p))
	name = sorted(k for k, v in j["weight_map"].items() if v.endswith("00001-of-00003.safetensors"))[0]
	j["weight_map"][name] = "model-00002-of-00003.safetensors"
	json.dump(j, open(p, "w"), indent=2)
	open("moved.name", "w").write(name)
	PY
	test_must_fail mlc-fetch moved <"$NO_STREAM" 2>err &&
	test_grep "weight_map puts tensor .$(cat moved.name). in model-00002-of-00003.safetensors, whose header does not have it" err
'

test_expect_success 'a file saved as an HTML error page under a weight name is refused' '
	cp -R pt html && printf "<html>Not found</html>\n" >html/pytorch_model-00002-of-00002.bin &&
	test_must_fail mlc-fetch html <"$NO_STREAM" 2>err &&
	test_grep "html/pytorch_model-00002-of-00002.bin: not a PyTorch checkpoint" err
'

test_expect_success 'broken links, non-models and missing directories get clear errors' '
	cp -R snap broken && rm blobs/tokenizer.json.blob &&
	test_must_fail mlc-fetch broken <"$NO_STREAM" 2>err &&
	test_grep "broken/tokenizer.json: broken symbolic link" err &&
	mkdir notmodel && echo hi >notmodel/README.md &&
	test_must_fail mlc-fetch notmodel <"$NO_STREAM" 2>err &&
	test_grep "notmodel: neither config.json nor mlc-chat-config.json: not a model repository" err &&
	test_must_fail mlc-fetch org/name <"$NO_STREAM" 2>err &&
	test_grep "org/name: no such directory (for a HuggingFace model, write HF://org/name)" err &&
	echo x >plainfile &&
	test_must_fail mlc-fetch plainfile <"$NO_STREAM" 2>err &&
	test_grep "plainfile: not a directory" err
'

test_expect_success 'usage errors exit 2; --help and --version exit 0' '
	mlc-fetch --help >help && test_grep "Usage: mlc-fetch" help &&
	mlc-fetch --version | test_grep "mlc-fetch (mlc-pipe)" &&
	{ mlc-fetch 2>err; test $? = 2; } && test_grep "no SOURCE given" err &&
	{ mlc-fetch --bogus x 2>err; test $? = 2; } &&
	{ mlc-fetch a b 2>err; test $? = 2; } && test_grep "unexpected argument" err &&
	{ mlc-fetch -j 0 x 2>err; test $? = 2; } &&
	{ mlc-fetch --policy SOMETIMES x 2>err; test $? = 2; } &&
	test_grep "policy: .SOMETIMES. is not ON, OFF, REDO or READONLY" err &&
	{ MLC_DOWNLOAD_CACHE_POLICY=maybe mlc-fetch x 2>err; test $? = 2; } &&
	test_grep "MLC_DOWNLOAD_CACHE_POLICY: .maybe. is not" err
'

test_expect_success 'every option of --help is in the manual page' '
	sed "s/\\\\-/-/g" "$SRC_DIR/man/mlc-fetch.1" >man.txt &&
	for opt in $(grep -o -- "--[a-z][a-z-]*" help | sort -u); do
		grep -q -- "$opt" man.txt || { echo "missing from man page: $opt"; return 1; }
	done
'

test_done
