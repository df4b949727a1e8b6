# Shell test library, in the manner of git's t/test-lib.sh.
#
#   . "$(dirname "$0")/lib.sh"
#   test_expect_success 'mlc-dump prints one line per record' '
#       mlc-dump in.mp >out && test_line_count = 3 out
#   '
#   test_done
#
# Every script runs in its own scratch directory ($TRASH, removed at the end
# unless MLC_KEEP_TRASH is set) with the built tools first on PATH. Each test
# body runs in a subshell with `set -e`; its output goes to a log that is
# shown (as "# " lines) only when it fails.

set -u
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$TESTS_DIR/.." && pwd)
MLC_BUILD=${MLC_BUILD:-$SRC_DIR/build}
PATH="$MLC_BUILD/bin:$MLC_BUILD/tests:$PATH"
FIXTURES="$TESTS_DIR/fixtures"
PYTHON=/usr/bin/python3
export PATH MLC_BUILD SRC_DIR TESTS_DIR FIXTURES PYTHON
export MLC_PROGRESS=never
# tests that run make must not inherit the outer make's jobserver or level
unset MAKEFLAGS MFLAGS MAKELEVEL MAKE_TERMOUT MAKE_TERMERR

test_name=$(basename "$0" .sh)
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/mlc-test.$test_name.XXXXXX")
export TRASH
cd "$TRASH" || exit 1
# Caches and homes never leak into the user's own.
export HOME="$TRASH/home" XDG_CACHE_HOME="$TRASH/home/.cache" MLC_LLM_HOME="$TRASH/home/mlc_llm"
mkdir -p "$HOME"

test_count=0
test_failures=0
test_log="$TRASH/.test.log"

test_expect_success () {
    test_count=$((test_count + 1))
    if ( set -e; eval "$2" ) >"$test_log" 2>&1 </dev/null; then
        echo "ok $test_count - $1"
    else
        test_failures=$((test_failures + 1))
        echo "not ok $test_count - $1"
        sed -e 's/^/#   /' "$test_log" | head -n 60
    fi
}

# Skip a test when a prerequisite is missing (counts as passed, says why).
test_skip () {
    test_count=$((test_count + 1))
    echo "ok $test_count - $1 # SKIP $2"
}

test_done () {
    echo "1..$test_count"
    cd / || true
    if [ -z "${MLC_KEEP_TRASH:-}" ]; then rm -rf "$TRASH"; else echo "# kept $TRASH"; fi
    [ "$test_failures" -eq 0 ]
    exit $?
}

# --- helpers for test bodies ---

# test_line_count = N FILE
test_line_count () {
    n=$(wc -l <"$3" | tr -d ' ')
    if ! [ "$n" "$1" "$2" ]; then
        echo "expected $1 $2 lines in $3, got $n:"
        cat "$3"
        return 1
    fi
}

# Fails (printing both) unless the files are identical.
test_cmp () {
    if ! cmp -s "$1" "$2"; then
        echo "files differ: $1 $2"
        diff -u "$1" "$2" | head -n 40 || true
        return 1
    fi
}

# test_must_fail CMD...: the command exits non-zero, and not by a signal
# (a crash is never the expected way to fail).
test_must_fail () {
    set +e
    "$@"
    rc=$?
    set -e
    if [ $rc -eq 0 ]; then echo "test_must_fail: '$*' succeeded"; return 1; fi
    if [ $rc -gt 128 ] && [ $rc -ne 141 ]; then echo "test_must_fail: '$*' died with signal $((rc - 128))"; return 1; fi
    return 0
}

# grep that prints the file when it does not match
test_grep () {
    if ! grep "$@"; then
        eval "last=\${$#}"
        echo "grep $* did not match; the file holds:"
        cat "$last" 2>/dev/null | head -n 40
        return 1
    fi
}

# test_must_be_empty FILE: prints the file when it is not empty
test_must_be_empty () {
    if [ -s "$1" ]; then
        echo "'$1' is not empty; it holds:"
        head -n 40 "$1"
        return 1
    fi
}

# test_lacks PATTERN FILE: grep finds nothing (prints the matches if it does)
test_lacks () {
    if grep -n "$1" "$2"; then
        echo "'$2' should not match '$1'"
        return 1
    fi
}
