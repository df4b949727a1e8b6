#!/bin/sh
# mlc-check --chat on a pseudo-terminal (tmux): a prompt, answers streamed as
# --generate gives them, /stats with prefill and decode speeds, /reset,
# /exit. And the same conversation from a pipe, without the prompt.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

export TMUX_TMPDIR="$TRASH" TERM=xterm
unset TMUX
tm () { tmux -L chat "$@"; }
screen () { tm capture-pane -p -t chat >screen.txt; }
# wait_for TEXT: until the screen shows TEXT (fixed string), 30 s at most
wait_for () {
	for i in $(seq 300); do
		screen
		grep -qF -- "$1" screen.txt && return 0
		sleep 0.1
	done
	echo "the screen never showed '$1':"
	cat screen.txt
	return 1
}

test_expect_success 'set up stories260K q4f16_1 and the answer --generate gives' '
	build_model "$STORIES" q4f16_1 m &&
	mlc-check -q --generate --greedy --max-tokens 24 --prompt "Once upon a time" <m.mp >once.want &&
	test_line_count = 1 once.want
'

if ! command -v tmux >/dev/null; then
	test_skip 'chat on a terminal' 'tmux is not installed'
else
test_expect_success 'a chat on a terminal: prompt, streamed answer, /stats, /reset, /exit' '
	tm new-session -d -s chat -x 220 -y 40 \
		"mlc-check -q --chat --greedy --max-tokens 24 --library m/m-cpu.tar --model m; echo status \$?; sleep 30" &&
	wait_for ">>>" &&
	tm send-keys -t chat "Once upon a time" Enter &&
	wait_for "$(cat once.want)" &&
	tm send-keys -t chat "/stats" Enter &&
	wait_for "decode: 24 tokens" &&
	grep -E "^prefill: [0-9]+ tokens, [0-9.]+ tok/s .*decode: 24 tokens, [0-9.]+ tok/s$" screen.txt &&
	tm send-keys -t chat "/reset" Enter &&
	wait_for "(the conversation starts over)" &&
	tm send-keys -t chat "/stats" Enter &&
	wait_for "no answer yet" &&
	tm send-keys -t chat "/exit" Enter &&
	wait_for "status 0"
'
tm kill-server 2>/dev/null
fi

test_expect_success 'the same from a pipe: the answers alone, and the conversation goes on' '
	printf "Once upon a time\n/stats\nShe was happy\n/exit\nnever read\n" |
		mlc-check -q --chat --greedy --max-tokens 24 --library m/m-cpu.tar --model m >out 2>err &&
	test_must_be_empty err &&
	head -n 1 out >first && test_cmp once.want first &&
	sed -n 2p out | test_grep "^prefill: .* decode: 24 tokens" &&
	test_line_count = 3 out &&
	test_lacks ">>>" out
'

test_expect_success 'the second turn is answered with the first in its context' '
	printf "Once upon a time\nShe was happy\n" |
		mlc-check -q --chat --greedy --max-tokens 24 --library m/m-cpu.tar --model m >two &&
	printf "She was happy\n" |
		mlc-check -q --chat --greedy --max-tokens 24 --library m/m-cpu.tar --model m >alone &&
	sed -n 2p two >second &&
	! cmp -s second alone
'

test_expect_success '--chat needs a conversation template; a bad option is a usage error' '
	test_must_fail mlc-check --chat --system hi --serve <m.mp 2>err &&
	test_grep "give one of --chat, --serve" err &&
	{ mlc-check --system hi 2>err; test $? = 2; } &&
	test_grep "system goes with --chat" err
'

test_done
