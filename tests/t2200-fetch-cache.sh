#!/bin/sh
# mlc-fetch's cache: the four policies, read-only caches, the manifest,
# damaged entries and stale temporaries.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

cp -R "$FIXTURES/stories260K" tiny
start_hub hub --repo org/tiny=tiny --repo org/other=tiny

HF="$MLC_LLM_HOME/model_weights/hf"
requests () { hub_count "\"method\""; }

test_expect_success 'OFF with nothing cached fails without a single request' '
	test_must_fail mlc-fetch --policy OFF HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "error: HF://org/tiny: not in the cache ($HF/org/tiny) and the download policy is OFF" err &&
	test ! -s out &&
	test "$(requests)" = 0
'

test_expect_success 'ON downloads on a miss; OFF then uses the entry without the network' '
	MLC_DOWNLOAD_CACHE_POLICY=ON mlc-fetch -q HF://org/tiny <"$NO_STREAM" >on.mp &&
	test "$(requests)" -gt 0 &&
	hub_reset &&
	MLC_DOWNLOAD_CACHE_POLICY=OFF mlc-fetch -q HF://org/tiny <"$NO_STREAM" >off.mp &&
	test "$(requests)" = 0 &&
	cmp on.mp off.mp
'

test_expect_success 'policy names are accepted in any case, and --policy beats the variable' '
	MLC_DOWNLOAD_CACHE_POLICY=off mlc-fetch -q HF://org/tiny <"$NO_STREAM" >/dev/null &&
	test_must_fail env MLC_DOWNLOAD_CACHE_POLICY=ON mlc-fetch --policy off HF://org/other <"$NO_STREAM" 2>err &&
	test_grep "policy is OFF" err &&
	test "$(requests)" = 0 &&
	MLC_DOWNLOAD_CACHE_POLICY=OFF mlc-fetch -q --policy on HF://org/other <"$NO_STREAM" >/dev/null &&
	test -d "$HF/org/other"
'

test_expect_success 'READONLY on a miss lists every place it looked and writes nothing' '
	hub_reset &&
	test_must_fail env MLC_LLM_READONLY_WEIGHT_CACHE="$TRASH/ro1::$TRASH/ro2" \
		mlc-fetch --policy READONLY HF://org/tiny@v9 <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/tiny@v9: not in any cache and the download policy is READONLY; looked in: $TRASH/ro1/hf/org/tiny@v9, $TRASH/ro2/hf/org/tiny@v9, $HF/org/tiny@v9" err &&
	test "$(requests)" = 0 &&
	test ! -e "$TRASH/ro1" && test ! -e "$HF/org/tiny@v9"
'

test_expect_success 'READONLY uses an entry of the writable cache too' '
	mlc-fetch -q --policy READONLY HF://org/tiny <"$NO_STREAM" >ro.mp &&
	test "$(model_field path ro.mp)" = "$HF/org/tiny" &&
	test "$(requests)" = 0
'

# A read-only cache as MLC-LLM fills it: a plain copy of the repository, no
# manifest of ours.
mkdir -p ro/hf/org/tiny
cp tiny/* ro/hf/org/tiny/

test_expect_success 'a read-only cache entry is searched first and hashed in place' '
	MLC_LLM_READONLY_WEIGHT_CACHE="$TRASH/empty-base:$TRASH/ro" mlc-fetch -q HF://org/tiny <"$NO_STREAM" >rocache.mp &&
	test "$(requests)" = 0 &&
	test "$(model_field path rocache.mp)" = "$TRASH/ro/hf/org/tiny" &&
	test "$(model_field commit rocache.mp)" = null &&
	test "$(model_field revision rocache.mp)" = main &&
	record_files rocache.mp >got &&
	expect_files tiny config.json generation_config.json model.safetensors \
		special_tokens_map.json tokenizer.json tokenizer.model tokenizer_config.json >want &&
	test_cmp want got &&
	test ! -e ro/hf/org/tiny/.mlc-fetch.json
'

test_expect_success 'a read-only directory without a config is not an entry' '
	mkdir -p ro2/hf/org/tiny && echo x >ro2/hf/org/tiny/README.md &&
	MLC_LLM_READONLY_WEIGHT_CACHE="$TRASH/ro2" mlc-fetch -q HF://org/tiny <"$NO_STREAM" >skip.mp &&
	test "$(model_field path skip.mp)" = "$HF/org/tiny"
'

test_expect_success 'REDO downloads again and replaces the entry, skipping read-only caches' '
	echo stale >"$HF/org/tiny/stale-marker" &&
	hub_reset &&
	MLC_LLM_READONLY_WEIGHT_CACHE="$TRASH/ro" mlc-fetch -q --policy REDO HF://org/tiny <"$NO_STREAM" >redo.mp &&
	test "$(model_field path redo.mp)" = "$HF/org/tiny" &&
	test "$(hub_count "/resolve/")" = 7 &&
	test ! -e "$HF/org/tiny/stale-marker" &&
	ls -A "$HF/org" >dirs && printf "%s\n" other tiny >want && test_cmp want dirs
'

test_expect_success 'a REDO that fails leaves the old entry as it was' '
	echo keep >"$HF/org/tiny/keep-marker" &&
	hub_faults "[{\"path\": \"/api/*\", \"status\": 404, \"headers\": {\"X-Error-Code\": \"RepoNotFound\"}}]" &&
	test_must_fail mlc-fetch --policy REDO HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "repository not found" err &&
	test -f "$HF/org/tiny/keep-marker" && test -f "$HF/org/tiny/model.safetensors" &&
	rm "$HF/org/tiny/keep-marker" && hub_reset
'

test_expect_success 'a damaged entry is an error that says how to repair it' '
	mv "$HF/org/tiny/tokenizer.json" saved.json &&
	test_must_fail mlc-fetch HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "error: cache entry $HF/org/tiny/tokenizer.json: missing (the manifest lists it); --policy REDO fetches it again" err &&
	mv saved.json "$HF/org/tiny/tokenizer.json" &&
	cp "$HF/org/tiny/tokenizer_config.json" saved.json &&
	echo "{}" >>"$HF/org/tiny/tokenizer_config.json" &&
	test_must_fail mlc-fetch HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "tokenizer_config.json: 868 bytes, but the manifest says 865" err &&
	cp saved.json "$HF/org/tiny/tokenizer_config.json"
'

test_expect_success 'same-size damage passes the manifest check; --verify finds it' '
	mlc-fetch -q HF://org/tiny <"$NO_STREAM" >before.mp &&
	printf X | dd of="$HF/org/tiny/tokenizer.json" bs=1 seek=10 conv=notrunc 2>/dev/null &&
	mlc-fetch -q HF://org/tiny <"$NO_STREAM" >trusting.mp &&
	cmp before.mp trusting.mp &&
	want=$(grep tokenizer.json "$HF/org/tiny/.mlc-fetch.json" -A 2 | sed -n "s/.*\"sha256\": \"\(.*\)\".*/\1/p") &&
	got=$(sha256sum "$HF/org/tiny/tokenizer.json" | cut -d" " -f1) &&
	test_must_fail mlc-fetch --verify HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "tokenizer.json: sha256 $got, but the manifest says $want" err &&
	mlc-fetch -q --policy REDO HF://org/tiny <"$NO_STREAM" >/dev/null &&
	mlc-fetch -q --verify HF://org/tiny <"$NO_STREAM" >after.mp &&
	cmp before.mp after.mp
'

test_expect_success 'an entry MLC-LLM made (no manifest) is checked and hashed' '
	hub_reset &&
	mkdir -p "$HF/org/mlcmade" && cp tiny/* "$HF/org/mlcmade/" &&
	mlc-fetch -q HF://org/mlcmade <"$NO_STREAM" >made.mp &&
	test "$(requests)" = 0 &&
	test "$(model_field commit made.mp)" = null &&
	record_files made.mp >got &&
	expect_files tiny config.json generation_config.json model.safetensors \
		special_tokens_map.json tokenizer.json tokenizer.model tokenizer_config.json >want &&
	test_cmp want got
'

test_expect_success 'temporaries of dead runs are removed, those of live ones kept' '
	dead=$(sh -c "echo \$\$") &&
	mkdir -p "$HF/org/.tiny.tmp.$dead.abc123" "$HF/org/.other.tmp.$$.live12" &&
	echo partial >"$HF/org/.tiny.tmp.$dead.abc123/model.safetensors" &&
	mlc-fetch -q HF://org/tiny <"$NO_STREAM" >/dev/null &&
	test ! -e "$HF/org/.tiny.tmp.$dead.abc123" &&
	test -d "$HF/org/.other.tmp.$$.live12" &&
	rmdir "$HF/org/.other.tmp.$$.live12"
'

test_expect_success 'READONLY never removes anything, not even dead temporaries' '
	dead=$(sh -c "echo \$\$") &&
	mkdir "$HF/org/.tiny.tmp.$dead.zzz999" &&
	mlc-fetch -q --policy READONLY HF://org/tiny <"$NO_STREAM" >/dev/null &&
	test -d "$HF/org/.tiny.tmp.$dead.zzz999" &&
	mlc-fetch -q --policy OFF HF://org/tiny <"$NO_STREAM" >/dev/null &&
	test ! -e "$HF/org/.tiny.tmp.$dead.zzz999"
'

test_expect_success 'local directories are used in place under every policy' '
	hub_reset &&
	for p in ON OFF REDO READONLY; do
		mlc-fetch -q --policy $p tiny <"$NO_STREAM" >local.mp &&
		test "$(model_field path local.mp)" = "$(cd tiny && pwd -P)" || return 1
	done &&
	test "$(requests)" = 0
'

test_expect_success 'with no usable home at all, hub sources fail clearly' '
	test_must_fail env -u MLC_LLM_HOME -u XDG_CACHE_HOME -u HOME mlc-fetch --policy OFF HF://org/zzz <"$NO_STREAM" 2>err &&
	test_grep "error: " err
'

test_done
