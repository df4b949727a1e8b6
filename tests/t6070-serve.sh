#!/bin/sh
# mlc-check --serve: an OpenAI-compatible server on 127.0.0.1, driven with
# curl. Its answers are the ones mlc-check --generate gives for the same
# prompt (greedy), streamed or not, also for two clients streaming at once;
# malformed requests get 400 (413 when too large) and the server goes on.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

# the JSON field EXPR (a Python expression over r) of FILE
field () { $PYTHON -c "import json,sys; r = json.load(open(sys.argv[1])); print($2)" "$1"; }
# the content of a stream of server-sent events, joined, then the finish reason
events () {
	$PYTHON - "$1" <<-'PY'
	import json, sys
	lines = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
	assert lines[-1] == "[DONE]", lines[-1]
	chunks = [json.loads(l) for l in lines[:-1]]
	assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
	assert all(c["object"] == "chat.completion.chunk" for c in chunks)
	print("".join(c["choices"][0]["delta"].get("content", "") for c in chunks))
	print(chunks[-1]["choices"][0]["finish_reason"])
	PY
}
url () { echo "http://127.0.0.1:$(cat port)$1"; }
ask () { curl -s --max-time 60 "$@"; }

test_expect_success 'set up stories260K q4f16_1 and the answers --generate gives' '
	build_model "$STORIES" q4f16_1 m &&
	mlc-check -q --generate --greedy --max-tokens 24 --prompt "Once upon a time" <m.mp >once.want &&
	mlc-check -q --generate --greedy --max-tokens 24 --prompt "The cat sat" <m.mp >cat.want
'

test_expect_success 'the server starts on a free port of 127.0.0.1' '
	# the server runs under a shell that records its exit status
	sh -c "mlc-check --serve --port 0 --greedy --max-tokens 24 <m.mp 2>serve.err & echo \$! >pid; wait \$!; echo \$? >rc" &
	for i in $(seq 100); do test -s pid && break; sleep 0.1; done &&
	for i in $(seq 100); do
		grep -q "serving on port" serve.err && break
		sleep 0.1
	done &&
	sed -n "s/.*serving on port \([0-9]*\).*/\1/p" serve.err >port &&
	test -s port
'

test_expect_success 'GET /v1/models lists the model' '
	ask "$(url /v1/models)" >models.json &&
	test "$(field models.json "r[\"object\"], r[\"data\"][0][\"id\"], r[\"data\"][0][\"object\"]" | tr -d "(),\047")" = "list m model"
'

test_expect_success 'a chat completion answers as --generate does' '
	ask "$(url /v1/chat/completions)" -H "Content-Type: application/json" \
		-d "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}]}" >a.json &&
	field a.json "r[\"choices\"][0][\"message\"][\"content\"]" >got &&
	test_cmp once.want got &&
	test "$(field a.json "r[\"object\"], r[\"choices\"][0][\"finish_reason\"], r[\"usage\"][\"completion_tokens\"]" | tr -d "(),\047")" = "chat.completion length 24"
'

test_expect_success 'stream: true sends the same answer as server-sent events' '
	ask -N "$(url /v1/chat/completions)" \
		-d "{\"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}]}" >s.txt &&
	events s.txt >got &&
	{ cat once.want; echo length; } >want &&
	test_cmp want got
'

test_expect_success 'two clients streaming at once both get their own answers' '
	ask -N "$(url /v1/chat/completions)" \
		-d "{\"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}]}" >s1.txt &
	p1=$!
	ask -N "$(url /v1/chat/completions)" \
		-d "{\"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"The cat sat\"}]}" >s2.txt &
	p2=$!
	wait $p1 && wait $p2 &&
	events s1.txt | head -n 1 >got1 && test_cmp once.want got1 &&
	events s2.txt | head -n 1 >got2 && test_cmp cat.want got2
'

test_expect_success 'max_tokens and the sampling fields of a request are honoured' '
	ask "$(url /v1/chat/completions)" \
		-d "{\"max_tokens\": 3, \"temperature\": 0, \"messages\": [{\"role\": \"user\", \"content\": \"Once upon a time\"}]}" >a.json &&
	test "$(field a.json "r[\"usage\"][\"completion_tokens\"]")" = 3
'

# status CODE BODY: the server answers BODY with CODE and an OpenAI error object
status () {
	ask -o err.json -w "%{http_code}" "$(url /v1/chat/completions)" --data-binary "$2" >code &&
	test "$(cat code)" = "$1" &&
	test "$(field err.json "r[\"error\"][\"type\"]")" = invalid_request_error
}

test_expect_success 'malformed requests get 400 with a message' '
	status 400 "{\"messages\": [" && test_grep "not valid JSON" err.json &&
	status 400 "[1, 2]" &&
	status 400 "{\"messages\": []}" && test_grep "non-empty array" err.json &&
	status 400 "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"hot\"}" &&
	test_grep temperature err.json &&
	status 400 "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 0}" &&
	status 400 "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream\": \"yes\"}" &&
	status 400 "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}" && test_grep wizard err.json
'

test_expect_success 'a body over the limit gets 413; wrong paths and methods 404 and 405' '
	head -c 1100000 /dev/zero | tr "\0" a >big &&
	status 413 @big &&
	ask -o /dev/null -w "%{http_code}" "$(url /v1/nothing)" >code && test "$(cat code)" = 404 &&
	ask -o /dev/null -w "%{http_code}" "$(url /v1/chat/completions)" >code && test "$(cat code)" = 405
'

test_expect_success 'the server still answers after them, and SIGINT stops it with 130' '
	ask "$(url /v1/models)" >models.json && test_grep "\"id\":\"m\"" models.json &&
	kill -INT $(cat pid) &&
	for i in $(seq 100); do test -s rc && break; sleep 0.1; done &&
	test "$(cat rc)" = 130 &&
	test_grep "stopped by signal 2" serve.err
'

kill $(cat pid 2>/dev/null) 2>/dev/null
test_done
