#!/bin/sh
# mlc-check --render: the prompt a conversation becomes with the model's
# conversation template (mlc-formats.md §5), printed by hand.
. "$(dirname "$0")/lib.sh"

test_expect_success 'a two-turn conversation with llama-3' '
	mkdir m && cp "$FIXTURES/stories260K/"* m/ &&
	mlc-cfg -q --model m --quantization q0f32 --conv-template llama-3 -o out </dev/null >/dev/null &&
	cat >conv.json <<-JSON &&
	[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
	 {"role": "user", "content": "How are you?"}]
	JSON
	mlc-check --model out --render conv.json >got &&
	printf "prefix_token_ids: 128000\n<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful, respectful and honest assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n\n" >want &&
	test_cmp want got
'

test_expect_success 'mistral_default glues the system message to the first user text' '
	mlc-cfg -q --model m --quantization q0f32 --conv-template mistral_default -o mis </dev/null >/dev/null &&
	echo "[{\"role\": \"user\", \"content\": \"Hi\"}]" >one.json &&
	mlc-check --model mis --render one.json >got &&
	test_grep "^prefix_token_ids: 1$" got &&
	test_grep "positivity.Hi \[/INST\]$" got
'

test_expect_success 'a malformed conversation names the file' '
	echo "[{\"role\": \"user\"" >bad.json &&
	test_must_fail mlc-check --model out --render bad.json 2>err &&
	test_grep "bad.json:" err &&
	echo "[{\"role\": \"wizard\", \"content\": \"x\"}]" >role.json &&
	test_must_fail mlc-check --model out --render role.json 2>err &&
	test_grep "role.json" err
'

test_done
