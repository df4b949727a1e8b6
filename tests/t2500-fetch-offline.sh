#!/bin/sh
# mlc-fetch as huggingface_hub behaves: HF_HUB_OFFLINE=1 uses the caches
# alone, the token `huggingface-cli login` stored under HF_HOME is used, and
# a host name that does not resolve fails at once instead of being retried.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

TOKEN=hf_Login_Token_1234
cp -R "$FIXTURES/stories260K" tiny
start_hub private --token "$TOKEN" --repo org/tiny=tiny --repo org/other=tiny

test_expect_success 'the login token under HF_HOME is sent when HF_TOKEN is not set' '
	mkdir -p hfhome && printf "%s\n" "$TOKEN" >hfhome/token &&
	HF_HOME="$TRASH/hfhome" mlc-fetch -q HF://org/tiny <"$NO_STREAM" >out.mp &&
	cmp tiny/config.json "$MLC_LLM_HOME/model_weights/hf/org/tiny/config.json"
'

test_expect_success 'HF_TOKEN_PATH names another file; without any token the hub says 401' '
	printf "%s\n" "$TOKEN" >elsewhere &&
	HF_TOKEN_PATH="$TRASH/elsewhere" mlc-fetch -q --policy REDO HF://org/tiny <"$NO_STREAM" >out.mp &&
	test_must_fail env HF_HOME="$TRASH/nowhere" mlc-fetch HF://org/other <"$NO_STREAM" >out.mp 2>err &&
	test_grep "401 Unauthorized" err
'

test_expect_success 'HF_HUB_OFFLINE=1: a cached model without a single request' '
	hub_reset &&
	HF_HUB_OFFLINE=1 mlc-fetch -q HF://org/tiny <"$NO_STREAM" >out.mp &&
	test "$(hub_count "\"path\"")" = 0
'

test_expect_success 'HF_HUB_OFFLINE=1: a model not in the cache fails, saying why, with no request' '
	hub_reset &&
	test_must_fail env HF_HUB_OFFLINE=1 HF_HOME="$TRASH/hfhome" mlc-fetch HF://org/other <"$NO_STREAM" >out 2>err &&
	test_grep "not in the cache .*(HF_HUB_OFFLINE is set: the caches alone)" err &&
	test "$(hub_count "\"path\"")" = 0 &&
	test_must_fail env HF_HUB_OFFLINE=yes mlc-fetch --policy REDO HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "REDO policy needs the network" err
'

test_expect_success '--depfile lists the model files, for the --stream file' '
	mlc-fetch -q --stream m.mp --depfile m.d tiny <"$NO_STREAM" &&
	sed -n 1p m.d | test_grep "^m.mp: \\\\$" &&
	test_grep "^  $TRASH/tiny/model.safetensors" m.d && test_grep "^  $TRASH/tiny/tokenizer.json" m.d &&
	{ mlc-fetch --depfile m.d tiny <"$NO_STREAM" 2>err; test $? = 2; }
'

test_expect_success 'a host that does not resolve fails at once, without retries' '
	start=$(date +%s) &&
	test_must_fail env HF_ENDPOINT=http://no-such-host.invalid mlc-fetch --retry-delay 2 HF://org/absent \
		<"$NO_STREAM" >out 2>err &&
	test $(( $(date +%s) - start )) -lt 2 &&
	test_grep "no network, or a wrong endpoint" err &&
	test_lacks retrying err
'

test_done
