#!/bin/sh
# mlc-fetch's credentials and TLS: the token goes to the hub and nowhere
# else, and certificates are always verified.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

TOKEN=hf_Secret_Token_4242_do_not_leak
cp -R "$FIXTURES/stories260K" tiny

# A private hub (every hub request needs the token) whose LFS files come
# from a second port, as the real hub's come from another host.
start_hub private --cdn --token "$TOKEN" --repo org/tiny=tiny
PRIVATE=$HF_ENDPOINT
PRIVATE_STATE=$HUB_STATE

# A TLS hub with a self-signed certificate for 127.0.0.1, and a certificate
# for another name.
if command -v openssl >/dev/null 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout other-key.pem -out other.pem -days 2 \
		-subj /CN=example.com -addext subjectAltName=DNS:example.com >/dev/null 2>&1; then
	start_hub tls --tls cert.pem key.pem --repo org/tiny=tiny
	TLS=$HF_ENDPOINT
	start_hub tls-other --tls other.pem other-key.pem --repo org/tiny=tiny
	TLS_OTHER=$HF_ENDPOINT
else
	TLS=
fi
HF_ENDPOINT=$PRIVATE
HUB_STATE=$PRIVATE_STATE
export HF_ENDPOINT HUB_STATE

# no_token_in FILE...: the token appears in none of them (nor under dirs).
no_token_in () {
	if grep -r -l -F -- "$TOKEN" "$@" 2>/dev/null; then echo "the token leaked into the files above"; return 1; fi
}

test_expect_success 'a private repository without a token: 401, and what to do' '
	test_must_fail mlc-fetch HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "error: HF://org/tiny: 401 Unauthorized: the repository is private or gated: set HF_TOKEN or --token-file" err &&
	test "$(hub_count "/api/")" = 1
'

test_expect_success 'HF_TOKEN is sent as a bearer token to the hub, never to the redirect target' '
	hub_reset &&
	HF_TOKEN=$TOKEN mlc-fetch HF://org/tiny <"$NO_STREAM" >out.mp 2>err &&
	cmp tiny/model.safetensors "$MLC_LLM_HOME/model_weights/hf/org/tiny/model.safetensors" &&
	$PYTHON - "$HUB_STATE/requests.log" "$TOKEN" <<-PY
	import json, sys
	hub = cdn = 0
	for line in open(sys.argv[1]):
	    r = json.loads(line)
	    auth = r["headers"].get("Authorization")
	    if r["server"] == "hub":
	        hub += 1
	        assert auth == "Bearer " + sys.argv[2], (r["path"], auth)
	    else:
	        cdn += 1
	        assert auth is None, ("token sent to the CDN", r["path"])
	assert hub == 8 and cdn == 2, (hub, cdn)
	PY
'

test_expect_success 'the token is in no output, no record and no cache file' '
	no_token_in out.mp err "$MLC_LLM_HOME" &&
	mlc-dump out.mp >out.jsonl && no_token_in out.jsonl
'

test_expect_success 'a refused token is reported without being shown' '
	test_must_fail env HF_TOKEN=hf_wrong_token_777 mlc-fetch --policy REDO HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "401 Unauthorized: the hub refused the token (HF_TOKEN or --token-file)" err &&
	! grep -F hf_wrong_token_777 err out
'

test_expect_success 'errors during a download do not show the token either' '
	hub_reset &&
	hub_faults "[{\"path\": \"/lfs/*\", \"status\": 500}]" &&
	test_must_fail env HF_TOKEN=$TOKEN mlc-fetch --policy REDO --retries 1 --retry-delay 0.01 HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "giving up after 2 attempts" err &&
	no_token_in out err "$MLC_LLM_HOME" &&
	hub_reset
'

test_expect_success 'a gated repository (403) is explained' '
	hub_reset &&
	hub_faults "[{\"path\": \"/api/*\", \"status\": 403, \"headers\": {\"X-Error-Code\": \"GatedRepo\", \"X-Error-Message\": \"Access to model org/tiny is restricted. You must have access to it and be authenticated to access it. Please log in.\"}}]" &&
	test_must_fail env HF_TOKEN=$TOKEN mlc-fetch --policy REDO HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "error: HF://org/tiny: 403 Forbidden: Access to model org/tiny is restricted" err &&
	test "$(hub_count "/api/")" = 1 &&
	no_token_in err && hub_reset
'

test_expect_success '--token-file is read (white space trimmed) and beats HF_TOKEN' '
	printf "  %s\n\n" "$TOKEN" >token &&
	HF_TOKEN=hf_wrong_token_777 mlc-fetch -q --token-file token --policy REDO HF://org/tiny <"$NO_STREAM" >tf.mp &&
	test "$(hub_count "Bearer $TOKEN")" = 8 &&
	test "$(hub_count hf_wrong_token_777)" = 0 &&
	no_token_in tf.mp "$MLC_LLM_HOME"
'

test_expect_success 'unusable tokens are refused before any request, without being shown' '
	hub_reset &&
	: >empty-token &&
	test_must_fail mlc-fetch --token-file empty-token HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "error: empty-token: the token is empty" err &&
	printf "hf_two\nlines_zz9\n" >two-lines &&
	test_must_fail mlc-fetch --token-file two-lines HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "two-lines: the token contains spaces or control characters" err &&
	! grep -F lines_zz9 err &&
	test_must_fail env "HF_TOKEN=hf_a b_zz9" mlc-fetch HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "HF_TOKEN: the token contains spaces or control characters" err &&
	! grep -F b_zz9 err &&
	test_must_fail mlc-fetch --token-file no-such-file HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "no-such-file" err &&
	test "$(hub_count "\"method\"")" = 0
'

if [ -n "$TLS" ]; then
test_expect_success 'TLS: a self-signed certificate is refused, without retries' '
	test_must_fail env HF_ENDPOINT=$TLS MLC_LLM_HOME=$TRASH/tls0 mlc-fetch --retry-delay 0.01 HF://org/tiny <"$NO_STREAM" >out 2>err &&
	test_grep "error: HF://org/tiny: $TLS/api/models/org/tiny/revision/main?blobs=true: TLS verification failed: SSL certificate problem: self-signed certificate" err &&
	! grep "retrying" err &&
	test ! -s out && test ! -e "$TRASH/tls0/model_weights/hf/org/tiny"
'

test_expect_success 'TLS: with its certificate in CURL_CA_BUNDLE the download works' '
	HF_ENDPOINT=$TLS CURL_CA_BUNDLE=$TRASH/cert.pem MLC_LLM_HOME=$TRASH/tlscache \
		mlc-fetch -q HF://org/tiny <"$NO_STREAM" >tls.mp &&
	cmp tiny/model.safetensors "$TRASH/tlscache/model_weights/hf/org/tiny/model.safetensors"
'

test_expect_success 'TLS: a trusted certificate for another host name is refused' '
	test_must_fail env HF_ENDPOINT=$TLS_OTHER CURL_CA_BUNDLE=$TRASH/other.pem \
		MLC_LLM_HOME=$TRASH/tlscache2 mlc-fetch HF://org/tiny <"$NO_STREAM" 2>err &&
	test_grep "TLS verification failed" err &&
	test_grep "127.0.0.1" err
'
else
test_skip 'TLS: a self-signed certificate is refused' 'no openssl command'
fi

test_done
