#!/bin/sh
# mlc-fetch when things go wrong: corrupt bytes, dropped and stalled
# connections, error answers, a killed run, hostile listings, LFS pointers,
# parallelism limits.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

cp -R "$FIXTURES/stories260K" tiny
mkmodel --arch qwen3 --shards 4 --tokenizer "$FIXTURES/stories260K" -o sharded
# MLC repositories whose tensor cache disagrees with its shards.
$PYTHON "$SRC_DIR/tests/helpers/mkmlc.py" badmd5
$PYTHON "$SRC_DIR/tests/helpers/mkmlc.py" badsize
$PYTHON - <<'PY'
import json
p = "badmd5/tensor-cache.json"; c = json.load(open(p))
c["records"][1]["md5sum"] = "0" * 32
json.dump(c, open(p, "w"), indent=4)
p = "badsize/tensor-cache.json"; c = json.load(open(p))
c["records"][0]["nbytes"] += 1
json.dump(c, open(p, "w"), indent=4)
PY
start_hub hub --cdn --repo org/tiny=tiny --repo org/sharded=sharded --repo org/badmd5=badmd5 \
	--repo org/badsize=badsize

HF="$MLC_LLM_HOME/model_weights/hf"
WEIGHTS='/lfs/*/model.safetensors'
FAST="--retry-delay 0.05"

# nothing_cached: no entry and no temporary directory for org/tiny.
nothing_cached () {
	test ! -e "$HF/org/tiny" &&
	if [ -d "$HF/org" ]; then ! ls -A "$HF/org" | grep tiny; fi
}

# ranges PATH-GLOB: the Range header of each logged request for matching paths
# ("-" when there was none), one per line, in order.
ranges () {
	$PYTHON - "$HUB_STATE/requests.log" "$1" <<-'PY'
	import fnmatch, json, sys
	for line in open(sys.argv[1]):
	    r = json.loads(line)
	    if fnmatch.fnmatch(r["path"].split("?")[0], sys.argv[2]):
	        print(r["headers"].get("Range", "-"))
	PY
}

# digest KIND FILE [OFFSET]: sha256 or git blob id of FILE, with the byte
# at OFFSET inverted (as the fake hub's "corrupt" fault does).
digest () {
	$PYTHON - "$@" <<-'PY'
	import hashlib, sys
	kind, path = sys.argv[1], sys.argv[2]
	data = bytearray(open(path, "rb").read())
	if len(sys.argv) > 3:
	    data[int(sys.argv[3])] ^= 0xFF
	if kind == "sha256":
	    print(hashlib.sha256(data).hexdigest())
	else:
	    print(hashlib.sha1(b"blob %d\0" % len(data) + bytes(data)).hexdigest())
	PY
}

test_expect_success 'corrupted weights: sha256 mismatch naming both digests, nothing cached' '
	hub_faults "[{\"path\": \"$WEIGHTS\", \"corrupt\": 1000}]" &&
	want=$(digest sha256 tiny/model.safetensors) &&
	got=$(digest sha256 tiny/model.safetensors 1000) &&
	test_must_fail mlc-fetch HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "error: HF://org/tiny: model.safetensors: sha256 mismatch: expected $want, got $got; the download is corrupt and nothing was cached" err &&
	test ! -s out &&
	nothing_cached
'

test_expect_success 'a corrupted small file fails its git blob id' '
	hub_reset &&
	hub_faults "[{\"path\": \"/org/tiny/resolve/*/config.json\", \"corrupt\": 5}]" &&
	want=$(digest blob tiny/config.json) &&
	got=$(digest blob tiny/config.json 5) &&
	test_must_fail mlc-fetch HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "config.json: git blob id mismatch: expected $want, got $got" err &&
	nothing_cached
'

test_expect_success 'an MLC shard whose md5 differs from its tensor cache is refused' '
	hub_reset &&
	got=$(md5sum badmd5/params_shard_1.bin | cut -d" " -f1) &&
	test_must_fail mlc-fetch HF://org/badmd5 <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/badmd5: params_shard_1.bin: md5 (from the tensor cache) mismatch: expected 00000000000000000000000000000000, got $got" err &&
	test ! -e "$HF/org/badmd5" && ! ls -A "$HF/org" | grep badmd5
'

test_expect_success 'a tensor cache whose shard size differs from the listing stops before the shards' '
	hub_reset &&
	test_must_fail mlc-fetch HF://org/badsize <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/badsize: tensor-cache.json says params_shard_0.bin has 40001 bytes, the hub lists 40000" err &&
	test "$(hub_count params_shard)" = 0
'

test_expect_success 'a connection cut mid-file is resumed with Range and verified whole' '
	hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"cut_after\": 300000, \"times\": 1}]" &&
	mlc-fetch $FAST HF://org/tiny <"$NO_STREAM" >out.mp 2>err &&
	ranges "$WEIGHTS" >got &&
	printf "%s\n" - bytes=300000- >want && test_cmp want got &&
	test_grep "model.safetensors: .*; resuming at byte 300000" err &&
	cmp tiny/model.safetensors "$HF/org/tiny/model.safetensors" &&
	record_files out.mp | grep model.safetensors >got &&
	expect_files tiny model.safetensors >want && test_cmp want got
'

test_expect_success 'a server that ignores the range is read again from the start' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"cut_after\": 300000, \"times\": 1}, {\"path\": \"$WEIGHTS\", \"ignore_range\": true}]" &&
	mlc-fetch -q $FAST HF://org/tiny <"$NO_STREAM" >/dev/null &&
	test "$(ranges "$WEIGHTS" | wc -l)" = 2 &&
	cmp tiny/model.safetensors "$HF/org/tiny/model.safetensors"
'

test_expect_success 'cuts that keep making progress do not use up the retries' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"cut_after\": 200000, \"times\": 3}]" &&
	mlc-fetch -q $FAST --retries 1 HF://org/tiny <"$NO_STREAM" >/dev/null &&
	ranges "$WEIGHTS" >got &&
	printf "%s\n" - bytes=200000- bytes=400000- bytes=600000- >want && test_cmp want got &&
	cmp tiny/model.safetensors "$HF/org/tiny/model.safetensors"
'

test_expect_success 'a stalled transfer times out and resumes' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"hold_after\": 100000, \"times\": 1}]" &&
	mlc-fetch $FAST --timeout 1 HF://org/tiny <"$NO_STREAM" >/dev/null 2>err &&
	touch "$HUB_STATE/release" &&
	ranges "$WEIGHTS" >got &&
	printf "%s\n" - bytes=100000- >want && test_cmp want got &&
	cmp tiny/model.safetensors "$HF/org/tiny/model.safetensors"
'

test_expect_success '500 from the API is retried with backoff' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"/api/*\", \"status\": 500, \"times\": 2}]" &&
	mlc-fetch $FAST HF://org/tiny <"$NO_STREAM" >/dev/null 2>err &&
	test "$(hub_count "/api/models/org/tiny")" = 3 &&
	test_grep "500 Internal Server Error; retrying in 0.1 s" err
'

test_expect_success 'Retry-After of a 503 is honoured' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"/org/tiny/resolve/*/config.json\", \"status\": 503, \"times\": 1, \"headers\": {\"Retry-After\": \"2\"}}]" &&
	mlc-fetch --retry-delay 0.01 HF://org/tiny <"$NO_STREAM" >/dev/null 2>err &&
	test_grep "config.json: 503 Service Unavailable; retrying in 2.0 s" err &&
	test "$(hub_count "/resolve/" | head -n 1)" -ge 8
'

test_expect_success 'a file that keeps failing with 500 gives up after the retries' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"status\": 500, \"body\": \"upstream exploded\"}]" &&
	test_must_fail mlc-fetch $FAST --retries 2 HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "error: HF://org/tiny: model.safetensors: giving up after 3 attempts: 500 Internal Server Error: upstream exploded" err &&
	test "$(ranges "$WEIGHTS" | wc -l)" = 3 &&
	test ! -s out && nothing_cached
'

test_expect_success '404s are not retried and say what was not found' '
	hub_reset &&
	test_must_fail mlc-fetch $FAST HF://org/nope <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/nope: repository not found (or private: set HF_TOKEN)" err &&
	test_must_fail mlc-fetch $FAST HF://org/tiny@nope <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/tiny@nope: revision .nope. not found" err &&
	test "$(hub_count "/api/")" = 2 &&
	hub_faults "[{\"path\": \"/org/tiny/resolve/*/tokenizer.json\", \"status\": 404, \"headers\": {\"X-Error-Code\": \"EntryNotFound\", \"X-Error-Message\": \"tokenizer.json does not exist\"}}]" &&
	test_must_fail mlc-fetch $FAST HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/tiny: tokenizer.json: 404 Not Found (EntryNotFound): tokenizer.json does not exist from $HF_ENDPOINT/org/tiny/resolve/" err &&
	test "$(hub_count "tokenizer.json")" = 1 &&
	nothing_cached
'

test_expect_success 'a server that is not there is retried, then reported' '
	port=$($PYTHON -c "import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])") &&
	test_must_fail env HF_ENDPOINT=http://127.0.0.1:$port mlc-fetch $FAST --retries 1 HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/tiny: .*giving up after 2 attempts: .*127.0.0.1" err
'

test_expect_success 'a redirect loop is an error, not a hang' '
	hub_reset &&
	hub_faults "[{\"path\": \"/org/tiny/resolve/*/config.json\", \"redirect\": \"/org/tiny/resolve/x/config.json\"}]" &&
	test_must_fail mlc-fetch $FAST HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "config.json: .*redirects" err && nothing_cached
'

test_expect_success 'kill -9 in the middle of a download leaves no entry; a rerun succeeds' '
	hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"hold_after\": 500000}]" &&
	{ mlc-fetch -q HF://org/tiny <"$NO_STREAM" >/dev/null 2>&1 & pid=$!; } &&
	wait_for_file "$HUB_STATE/held.log" 60 &&
	kill -9 $pid && { wait $pid || true; } &&
	test ! -e "$HF/org/tiny" &&
	ls -A "$HF/org" >litter && test_grep "^\.tiny\.tmp\.$pid\." litter &&
	test -f "$(ls -d "$HF/org/.tiny.tmp.$pid."*)/model.safetensors" &&
	touch "$HUB_STATE/release" && hub_faults "[]" &&
	mlc-fetch -q HF://org/tiny <"$NO_STREAM" >again.mp &&
	ls -A "$HF/org" >after && echo tiny >want && test_cmp want after &&
	cmp tiny/model.safetensors "$HF/org/tiny/model.safetensors"
'

test_expect_success 'the server sending an LFS pointer instead of the weights is named, with the fix' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"serve_pointer\": true}]" &&
	test_must_fail mlc-fetch $FAST HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/tiny: model.safetensors: the server sent a Git LFS pointer instead of the file (install git-lfs and run .git lfs pull. in the repository)" err &&
	nothing_cached
'

test_expect_success 'a server sending more than the listed size is cut off before it fills the disk' '
	hub_reset &&
	curl -sf "$HF_ENDPOINT/api/models/org/tiny/revision/main?blobs=true" >listing.json &&
	$PYTHON - <<-PY &&
	import json
	doc = json.load(open("listing.json"))
	for s in doc["siblings"]:
	    if s["rfilename"] == "model.safetensors":
	        s["size"] = s["lfs"]["size"] = 1000
	json.dump([{"path": "/api/*", "json_set": {"siblings": doc["siblings"]}}], open("faults.json", "w"))
	PY
	hub_faults "$(cat faults.json)" &&
	test_must_fail mlc-fetch $FAST HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "model.safetensors: size mismatch: expected 1000 bytes, the server sends 1044992" err &&
	nothing_cached
'

# hostile NAME-JSON: a listing with one more sibling must be refused, and
# nothing may be written anywhere.
hostile () {
	hub_reset &&
	hub_faults "[{\"path\": \"/api/*\", \"siblings_add\": [$1]}]" &&
	test_must_fail mlc-fetch $FAST --include "*" HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_must_be_empty out &&
	{ nothing_cached || { echo "listing $1: something was cached:"; ls -laR "$HF"; false; }; } &&
	# downloads after this run's listing request: the previous test's fetch
	# may have left requests in flight when it failed, which the hub reads
	# (and logs) only after hub_reset
	n=$(awk "/\/api\/models\//{n = 0} /\/resolve\//{n++} END {print n + 0}" "$HUB_STATE/requests.log") &&
	{ test "$n" = 0 || { echo "listing $1: $n downloads started"; cat "$HUB_STATE/requests.log"; false; }; } &&
	test_grep "error: $HF_ENDPOINT/api/models/org/tiny/revision/main?blobs=true: " err
}

test_expect_success 'listings with names that escape the directory are refused' '
	blob="\"blobId\": \"0000000000000000000000000000000000000000\", \"size\": 5" &&
	for name in "../evil" "../../../tmp/evil" "/etc/evil" "a/../../evil" "a/./b" "a//b" \
		"x\\\\y" "evil\\n" "."; do
		hostile "{\"rfilename\": \"$name\", $blob}" &&
		test_grep "refusing a file name that is absolute, has .\.\.., .\.. or empty components" err || return 1
	done &&
	# where those names would land: inside this test, or at /tmp/evil and
	# /etc/evil (other tests running beside this one may have their own
	# files called evil*, so /tmp is not searched as a whole)
	find "$TRASH" -name "evil*" >escaped 2>/dev/null &&
	test_must_be_empty escaped &&
	{ test ! -e /tmp/evil || { ls -la /tmp/evil; false; }; } &&
	{ test ! -e /etc/evil || { ls -la /etc/evil; false; }; }
'

test_expect_success 'listings with clashing or malformed entries are refused' '
	blob="\"blobId\": \"0000000000000000000000000000000000000000\"" &&
	hostile "{\"rfilename\": \"config.json\", $blob, \"size\": 5}" &&
	test_grep "refusing a listing that names .config.json. twice" err &&
	hostile "{\"rfilename\": \"config.json/x\", $blob, \"size\": 5}" &&
	test_grep "refusing a listing where .config.json. is both a file and a directory" err &&
	hostile "{\"rfilename\": \"a.txt\", $blob}" &&
	test_grep "no integer .size." err &&
	hostile "{\"rfilename\": \"a.txt\", $blob, \"size\": -5}" &&
	test_grep "size out of range" err &&
	hostile "{\"rfilename\": \"a.bin\", \"size\": 5, \"lfs\": {\"sha256\": \"../../x\", \"size\": 5}}" &&
	test_grep "lfs.sha256. must be 64 hexadecimal digits" err &&
	hostile "{\"rfilename\": \"a.txt\", \"size\": 5, \"blobId\": \"xyz\"}" &&
	test_grep "blobId. must be 40 hexadecimal digits" err
'

test_expect_success 'a listing whose commit id is malformed is refused' '
	hub_reset &&
	hub_faults "[{\"path\": \"/api/*\", \"json_set\": {\"sha\": \"../../main\"}}]" &&
	test_must_fail mlc-fetch HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "field .sha. must be a 40-digit commit id" err && nothing_cached
'

test_expect_success '-j limits the number of transfers at once' '
	hub_reset &&
	hub_faults "[{\"path\": \"/lfs/*/model-0000?-of-00004.safetensors\", \"hold_after\": 1000}]" &&
	{ mlc-fetch -q -j 2 HF://org/sharded <"$NO_STREAM" >sh.mp 2>sh.err & pid=$!; } &&
	wait_for_file "$HUB_STATE/max_inflight" 60 &&
	i=0; while [ "$(wc -l <"$HUB_STATE/held.log" 2>/dev/null || echo 0)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done &&
	sleep 1 &&
	test "$(wc -l <"$HUB_STATE/held.log")" = 2 &&
	touch "$HUB_STATE/release" &&
	wait $pid &&
	test "$(cat "$HUB_STATE/max_inflight")" = 2 &&
	record_files sh.mp | cut -d" " -f1 | grep -c "of-00004.safetensors" >n && test "$(cat n)" = 4
'

test_expect_success 'two runs fetching the same model at once both succeed with one entry' '
	rm -rf "$HF/org/tiny" && hub_reset &&
	hub_faults "[{\"path\": \"$WEIGHTS\", \"hold_after\": 1000}]" &&
	{ mlc-fetch -q HF://org/tiny <"$NO_STREAM" >a.mp 2>a.err & a=$!; } &&
	{ mlc-fetch -q HF://org/tiny <"$NO_STREAM" >b.mp 2>b.err & b=$!; } &&
	i=0; while [ "$(wc -l <"$HUB_STATE/held.log" 2>/dev/null || echo 0)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done &&
	touch "$HUB_STATE/release" &&
	wait $a && wait $b &&
	test "$(model_field path a.mp)" = "$HF/org/tiny" &&
	test "$(model_field path b.mp)" = "$HF/org/tiny" &&
	record_files a.mp >fa && record_files b.mp >fb && test_cmp fa fb &&
	ls -A "$HF/org" >after && printf "%s\n" sharded tiny >want && test_cmp want after
'

test_expect_success '-j 1 downloads one file at a time' '
	rm -rf "$HF/org/sharded" && hub_reset &&
	mlc-fetch -q -j 1 HF://org/sharded <"$NO_STREAM" >/dev/null &&
	test "$(cat "$HUB_STATE/max_inflight")" = 1
'

test_done
