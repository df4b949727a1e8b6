# Helpers for mlc-fetch's tests: reading model records, and driving the fake
# hub (tests/helpers/fakehub.py). Source it after lib.sh, and start servers at
# the top level of the script (not inside a test body), so that the EXIT trap
# stops them however the script ends:
#
#   . "$TESTS_DIR/helpers/fetch-lib.sh"
#   start_hub hub --repo org/name="$FIXTURES/stories260K"
#   test_expect_success '...' '
#       hub_faults "[{\"path\": \"/lfs/*\", \"status\": 500, \"times\": 1}]" &&
#       mlc-fetch HF://org/name >out &&
#       test "$(hub_count "\"path\": \"/lfs/")" = 2
#   '
#
# start_hub NAME ARGS... keeps the server's state in $TRASH/NAME and sets
# HUB_STATE and HUB_PORT, and exports HF_ENDPOINT pointing at it. The server
# also exits by itself when this script's shell is gone.

# Requests to 127.0.0.1 must never go through a proxy of the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export no_proxy='*' NO_PROXY='*'

HUB_PIDS=""

# An empty standard input for tools that read a record stream from a
# non-terminal stdin (a file of our own: a clobbered /dev/null would feed
# them garbage).
NO_STREAM="$TRASH/.no-stream"
: >"$NO_STREAM"
export NO_STREAM

stop_hubs () {
    for pid in $HUB_PIDS; do kill "$pid" 2>/dev/null; done
    for pid in $HUB_PIDS; do wait "$pid" 2>/dev/null; done
    HUB_PIDS=""
}

# wait_for_file FILE [SECONDS]: until FILE exists and is not empty.
wait_for_file () {
    limit=$(( ${2:-60} * 10 ))
    i=0
    while [ ! -s "$1" ]; do
        i=$((i + 1))
        if [ "$i" -gt "$limit" ]; then echo "timed out waiting for $1"; return 1; fi
        sleep 0.1
    done
}

start_hub () {
    hub_name=$1
    shift
    HUB_STATE="$TRASH/$hub_name"
    mkdir -p "$HUB_STATE"
    scheme=http
    for a in "$@"; do [ "$a" = --tls ] && scheme=https; done
    "$PYTHON" "$TESTS_DIR/helpers/fakehub.py" --state "$HUB_STATE" --parent $$ "$@" \
        >"$HUB_STATE/server.log" 2>&1 &
    HUB_PIDS="$HUB_PIDS $!"
    trap stop_hubs EXIT
    if ! wait_for_file "$HUB_STATE/port" 120; then
        cat "$HUB_STATE/server.log"
        return 1
    fi
    HUB_PORT=$(cat "$HUB_STATE/port")
    HF_ENDPOINT="$scheme://127.0.0.1:$HUB_PORT"
    export HF_ENDPOINT HUB_STATE HUB_PORT
}

# hub_faults JSON: the fault rules for the next requests ("[]" for none).
hub_faults () {
    printf '%s\n' "$1" >"$HUB_STATE/faults.json.new" &&
    mv "$HUB_STATE/faults.json.new" "$HUB_STATE/faults.json"
}

# Forget the requests, holds and releases seen so far.
hub_reset () {
    rm -f "$HUB_STATE/requests.log" "$HUB_STATE/held.log" "$HUB_STATE/release" \
        "$HUB_STATE/max_inflight"
    hub_faults '[]'
}

# hub_count TEXT: how many logged requests contain TEXT.
hub_count () {
    if [ -f "$HUB_STATE/requests.log" ]; then
        grep -c -F -- "$1" "$HUB_STATE/requests.log" || true
    else
        echo 0
    fi
}

# --- model records ---

# model_field FIELD STREAM: a top-level field of the last model record
# ("null" for nil).
model_field () {
    mlc-dump --type model "$2" | tail -n 1 |
        "$PYTHON" -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print("null" if v is None else v)' "$1"
}

# record_files STREAM: "NAME SIZE SHA256" per file of the last model record.
record_files () {
    mlc-dump --type model "$1" | tail -n 1 |
        "$PYTHON" -c 'import json, sys
for f in json.load(sys.stdin)["files"]: print(f["name"], f["size"], f["sha256"])'
}

# expect_files DIR NAME...: "NAME SIZE SHA256" computed by Python, sorted by
# name: the independent expectation for record_files.
expect_files () {
    "$PYTHON" - "$@" <<'PY'
import hashlib, os, sys
d = sys.argv[1]
for n in sorted(sys.argv[2:]):
    data = open(os.path.join(d, n), "rb").read()
    print(n, len(data), hashlib.sha256(data).hexdigest())
PY
}
