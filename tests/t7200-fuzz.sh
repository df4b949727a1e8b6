#!/bin/sh
# Every libFuzzer harness (tests/fuzz/) runs briefly, so that a parser that
# starts crashing, leaking or running away shows up in the suite: `make
# fuzz-build` (clang, ASan+UBSan) into $MLC_BUILD/fuzz-suite, then
# tests/fuzz/run for MLC_FUZZ_SECONDS (6) each, two at a time. `make fuzz
# FUZZ_SECONDS=N` is the longer run for people. Skipped, saying why, without
# clang's libFuzzer, and under `make asan` (MLC_FUZZ_SECONDS=0: the
# harnesses are sanitized builds already).
. "$(dirname "$0")/lib.sh"

secs=${MLC_FUZZ_SECONDS:-6}
runtime=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)
if [ "$secs" = 0 ]; then
	test_skip 'fuzz harnesses' 'MLC_FUZZ_SECONDS=0 (make asan: run them with make fuzz)'
	test_done
fi
if ! command -v clang >/dev/null 2>&1 || [ ! -f "$runtime" ]; then
	test_skip 'fuzz harnesses' 'no clang with libFuzzer (scripts/install-deps installs clang and libclang-rt-14-dev)'
	test_done
fi

# inside the build directory, so that a second run rebuilds only what changed
FUZZ="$MLC_BUILD/fuzz-suite"
test_expect_success 'the harnesses build with clang, libFuzzer, ASan and UBSan' '
	make -s -C "$SRC_DIR" -j2 FUZZ_BUILD="$FUZZ" fuzz-build >build.log 2>&1 || { tail -n 30 build.log; false; }
'

# tests/fuzz/run prints its own TAP lines: renumber them after ours
MLC_FUZZ_BUILD="$FUZZ" "$SRC_DIR/tests/fuzz/run" --seconds "$secs" --jobs 2 >fuzz.tap 2>&1
while IFS= read -r line; do
	case $line in
	"ok "*|"not ok "*)
		test_count=$((test_count + 1))
		status=${line%% [0-9]*}
		rest=$(printf '%s\n' "$line" | sed 's/^[a-z ]* [0-9][0-9]*//')
		echo "$status $test_count$rest"
		[ "$status" = ok ] || test_failures=$((test_failures + 1)) ;;
	"#"*) echo "$line" ;;
	esac
done <fuzz.tap
if ! grep -q '^1\.\.' fuzz.tap; then
	test_count=$((test_count + 1)) test_failures=$((test_failures + 1))
	echo "not ok $test_count - tests/fuzz/run did not finish"
	sed 's/^/# /' fuzz.tap | tail -n 20
fi
test_done
