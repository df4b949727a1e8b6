#!/bin/sh
# Faults from outside: mlc-quant and mlc-fetch killed with SIGKILL at spread
# moments leave the old result or the new one, and a rerun gives the bytes
# of a clean run; SIGINT at several moments of mlc-quant leaves no
# temporary behind; a full disk (a small tmpfs) at every writing stage is
# reported and publishes nothing half-written.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/helpers/fetch-lib.sh"

# now_ms: a clock in milliseconds
now_ms () { date +%s%3N; }

# spread I N MS: the I-th of N moments spread over MS milliseconds, as a
# sleep(1) argument (from the start to the end of the run)
spread () { awk -v i="$1" -v n="$2" -v ms="$3" 'BEGIN { printf "%.3f", ms * (0.02 + 0.98 * i / n) / 1000 }'; }

# timed FILE CMD...: run CMD, keeping the shortest of its durations (ms) in
# FILE (the first run of a series reads cold files)
timed () {
	f=$1
	shift
	t0=$(now_ms)
	"$@" || return 1
	t=$(( $(now_ms) - t0 ))
	if [ ! -s "$f" ] || [ "$t" -lt "$(cat "$f")" ]; then echo "$t" >"$f"; fi
}

# temporaries DIR: the names atomic.h gives temporaries, under DIR
temporaries () { find "$1" -name '.*.tmp.*' 2>/dev/null; }

# $WITH_SIGINT CMD...: run CMD with SIGINT at its default action (a
# background job of a script starts with it ignored, and the tools keep an
# ignored SIGINT ignored). Commands sent to the background are never shell
# functions: $! would be the subshell running the function, not the tool.
cat >sigint-default.py <<'PY'
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])
PY
WITH_SIGINT="$PYTHON $TRASH/sigint-default.py"

# A llama whose q0f16 tensor cache has 3 shards and whose conversion takes
# a few tenths of a second: room for kills in every phase.
mkmodel --arch llama --dtype bf16 --hidden 512 --intermediate 1536 --layers 8 --heads 8 --kv-heads 4 \
	--vocab 8000 -o mm
cat >new.json <<'JSON'
{"model_type": "llama", "quantization": "q0f16",
 "model_config": {"hidden_size": 512, "intermediate_size": 1536, "num_attention_heads": 8,
  "num_key_value_heads": 4, "num_hidden_layers": 8, "vocab_size": 8000, "head_dim": 64}}
JSON
sed 's/q0f16/q4f16_1/' new.json >old.json
QUANT="mlc-quant -q -j2 --model mm --config"

test_expect_success 'clean runs: the new result (q0f16) and an old one (q4f16_1)' '
	timed quant.ms $QUANT new.json -o ref --stream ref.mp &&
	timed quant.ms $QUANT new.json -o ref --stream ref.mp &&
	timed quant.ms $QUANT new.json -o ref --stream ref.mp &&
	$QUANT old.json -o old --stream /dev/null &&
	test "$(ls ref/params_shard_*.bin | wc -l)" -ge 3 &&
	test "$(ls old/params_shard_*.bin | wc -l)" -ge 1
'

# consistent DIR: a tensor-cache.json in DIR is the old one or the new one,
# and every shard it lists holds the bytes of that result; or there is none
# (publishing had begun: the old JSON goes first, the new one last).
consistent () {
	if [ ! -e "$1/tensor-cache.json" ]; then return 0; fi
	for want in ref old; do
		if cmp -s "$1/tensor-cache.json" "$want/tensor-cache.json"; then
			for s in $(cd "$want" && ls params_shard_*.bin); do cmp "$1/$s" "$want/$s" || return 1; done
			return 0
		fi
	done
	echo "$1/tensor-cache.json is neither the old result nor the new one"
	return 1
}

ms=$(cat quant.ms 2>/dev/null || echo 500)
i=0
while [ $i -lt 20 ]; do
	i=$((i + 1))
	delay=$(spread $i 20 "$ms")
	from=$([ $((i % 2)) = 0 ] && echo "the old result" || echo "nothing")
	test_expect_success "kill -9 of mlc-quant after ${delay}s (over $from): old or new, and a rerun is a clean run" '
		rm -rf out && if [ $((i % 2)) = 0 ]; then cp -R old out; fi &&
		{ $QUANT new.json -o out --stream /dev/null & pid=$!; } &&
		sleep $delay && kill -9 $pid 2>/dev/null; rc=0; wait $pid || rc=$?;
		echo "$rc" >>quant-kills &&
		consistent out &&
		$QUANT new.json -o out --stream again.mp &&
		diff -r ref out && test -z "$(temporaries out)" &&
		mlc-dump again.mp | sed "s|/out\"|/ref\"|g; s|/out/|/ref/|g" >a.json &&
		mlc-dump ref.mp >r.json && test_cmp r.json a.json
	'
done

test_expect_success 'most of the kills fell inside the run (status 137)' '
	cat quant-kills && test "$(grep -c "^137$" quant-kills)" -ge 10
'

i=0
while [ $i -lt 8 ]; do
	i=$((i + 1))
	delay=$(spread $((i - 1)) 8 "$ms")
	test_expect_success "SIGINT to mlc-quant after ${delay}s: no temporaries, the old result or the new one" '
		rm -rf int && cp -R old int &&
		{ $WITH_SIGINT mlc-quant -q -j2 --model mm --config new.json -o int --stream /dev/null 2>int.err & pid=$!; } &&
		sleep $delay && kill -INT $pid 2>/dev/null; rc=0; wait $pid || rc=$?;
		echo "$rc" >>interrupts && cat int.err &&
		{ [ $rc = 130 ] || [ $rc = 0 ]; } &&
		test -z "$(temporaries int)" && consistent int
	'
done

test_expect_success 'most of the interrupts fell inside the run (status 130)' '
	cat interrupts && test "$(grep -c "^130$" interrupts)" -ge 4
'

# ---- mlc-fetch against the fake hub ----

cp -R "$FIXTURES/stories260K" tiny
start_hub hub --repo org/tiny=tiny
HF="$MLC_LLM_HOME/model_weights/hf"

test_expect_success 'a clean fetch, throttled so that kills fall inside it' '
	hub_faults "[{\"path\": \"*\", \"rate\": 2000000}]" &&
	timed fetch.ms mlc-fetch -q HF://org/tiny <"$NO_STREAM" >fetch-ref.mp &&
	cp -R "$HF/org/tiny" fetched-ref && rm -rf "$HF/org" &&
	timed fetch.ms mlc-fetch -q HF://org/tiny <"$NO_STREAM" >fetch-ref.mp
'

fms=$(cat fetch.ms 2>/dev/null || echo 500)
i=0
while [ $i -lt 10 ]; do
	i=$((i + 1))
	delay=$(spread $((i - 1)) 10 "$fms")
	test_expect_success "kill -9 of mlc-fetch after ${delay}s: no entry or a whole one, and a rerun is a clean run" '
		rm -rf "$HF/org" &&
		{ mlc-fetch -q HF://org/tiny <"$NO_STREAM" >/dev/null 2>&1 & pid=$!; } &&
		sleep $delay && kill -9 $pid 2>/dev/null; rc=0; wait $pid || rc=$?;
		echo "$rc" >>fetch-kills &&
		if [ -e "$HF/org/tiny" ]; then diff -r fetched-ref "$HF/org/tiny"; fi &&
		mlc-fetch -q HF://org/tiny <"$NO_STREAM" >fetch-again.mp &&
		diff -r fetched-ref "$HF/org/tiny" && test_cmp fetch-ref.mp fetch-again.mp &&
		test -z "$(temporaries "$HF")"
	'
done
hub_faults "[]"

test_expect_success 'most of the fetch kills fell inside the run (status 137)' '
	cat fetch-kills && test "$(grep -c "^137$" fetch-kills)" -ge 5
'

# ---- a full disk ----

SMALL="$TRASH/small"
mkdir -p "$SMALL"
if mount -t tmpfs -o size=64k tmpfs "$SMALL" 2>mount.err; then
	trap 'umount "$SMALL" 2>/dev/null; stop_hubs' EXIT
	have_tmpfs=1
else
	have_tmpfs=
	why="cannot mount a tmpfs here ($(head -n 1 mount.err))"
fi

# small_fs KB: a fresh tmpfs of KB kilobytes at $SMALL
small_fs () { umount "$SMALL" && mount -t tmpfs -o size="$1"k tmpfs "$SMALL"; }

# full_disk_error: the one error names the device's complaint
full_disk_error () { test_grep "No space left on device" err && test_line_count = 1 err; }

enospc () {
	if [ -n "$have_tmpfs" ]; then test_expect_success "$1" "$2"; else test_skip "$1" "$why"; fi
}

mlc-fetch -q "$FIXTURES/stories260K" <"$NO_STREAM" >s1.mp &&
mlc-cfg -q --quantization q4f16_1 -o s <s1.mp >s2.mp &&
mlc-quant -q <s2.mp >s3.mp && mlc-lower -q <s3.mp >s4.mp

enospc 'mlc-fetch on a full disk: the error, no cache entry, no temporary' '
	small_fs 256 &&
	test_must_fail env MLC_LLM_HOME="$SMALL/home" mlc-fetch -q HF://org/tiny <"$NO_STREAM" >/dev/null 2>err &&
	full_disk_error && test ! -e "$SMALL/home/model_weights/hf/org/tiny" && test -z "$(temporaries "$SMALL")"
'

enospc 'mlc-cfg on a full disk publishes none of its files (not even the tokenizer copied first)' '
	small_fs 16 &&
	test_must_fail mlc-cfg -q --quantization q4f16_1 -o "$SMALL/cfg" <s1.mp >/dev/null 2>err &&
	full_disk_error && test -z "$(ls -A "$SMALL/cfg")"
'

enospc 'mlc-quant on a full disk: the error, no shard, no tensor-cache.json, no temporary' '
	small_fs 64 &&
	test_must_fail mlc-quant -q --config s/mlc-chat-config.json --model "$FIXTURES/stories260K" \
		-o "$SMALL/q" --stream /dev/null 2>err &&
	full_disk_error && test -z "$(ls -A "$SMALL/q")"
'

enospc 'mlc-lower writing its stream to a full disk leaves no stream file' '
	small_fs 16 &&
	test_must_fail mlc-lower -q --stream "$SMALL/s4.mp" <s3.mp 2>err &&
	full_disk_error && test -z "$(ls -A "$SMALL")"
'

enospc 'mlc-emit on a full disk leaves no library and no stream' '
	small_fs 16 &&
	test_must_fail mlc-emit -q -o "$SMALL/lib.tar" --stream "$SMALL/s5.mp" <s4.mp 2>err &&
	full_disk_error && test -z "$(ls -A "$SMALL")"
'

if [ -n "$have_tmpfs" ]; then umount "$SMALL"; fi
test_done
