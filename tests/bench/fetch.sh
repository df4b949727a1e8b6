#!/bin/sh
# Benchmark: mlc-fetch downloading a 1 GiB weight file from the local fake hub
# with sha256 verification on, against plain `curl -L -o` of the same URL.
#
#   tests/bench/fetch.sh            (after make; MLC_BUILD picks the build)
#   MLC_BENCH_FETCH_MB=2048 tests/bench/fetch.sh
#
# Prints the best of MLC_BENCH_RUNS (3) runs of each:
#   download  curl's own rate, and mlc-fetch's rate while downloading and
#             hashing (from its progress meter's last line);
#   end to end  wall time of curl -o followed by `sync FILE`, against
#             mlc-fetch's whole run (listing, download, verification,
#             checks, fsync of the entry and the rename that publishes it).
# Both sides run on this machine together with the server, so on a small
# or busy machine the figures include their competition for the CPUs.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
MLC_BUILD=${MLC_BUILD:-$top/build}
PYTHON=/usr/bin/python3
MB=${MLC_BENCH_FETCH_MB:-1024}
RUNS=${MLC_BENCH_RUNS:-3}
PATH="$MLC_BUILD/bin:$PATH"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export no_proxy='*' MLC_PROGRESS=always

work=$(mktemp -d "${TMPDIR:-/tmp}/mlc-bench-fetch.XXXXXX")
hub_pid=
cleanup () {
    [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A model repository whose weight file is MB MiB of random bytes, as a valid
# safetensors file (mlc-fetch checks its header after the download).
mkdir -p "$work/repo"
"$PYTHON" - "$work/repo" "$MB" <<'PY'
import json, os, struct, sys
out, n = sys.argv[1], int(sys.argv[2]) << 20
header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
header += b" " * (-len(header) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    for _ in range(n >> 24):
        f.write(os.urandom(1 << 24))
    f.write(os.urandom(n & ((1 << 24) - 1)))
json.dump({"model_type": "llama"}, open(os.path.join(out, "config.json"), "w"))
PY
size=$(wc -c <"$work/repo/model.safetensors" | tr -d ' ')

"$PYTHON" "$top/tests/helpers/fakehub.py" --state "$work/hub" --parent $$ \
    --repo bench/big="$work/repo" >"$work/hub.log" 2>&1 &
hub_pid=$!
i=0
while [ ! -s "$work/hub/port" ]; do
    i=$((i + 1)); [ $i -lt 1200 ] || { cat "$work/hub.log"; exit 1; }
    sleep 0.1
done
export HF_ENDPOINT="http://127.0.0.1:$(cat "$work/hub/port")"
commit=$(curl -sf "$HF_ENDPOINT/api/models/bench/big/revision/main?blobs=true" |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["sha"])')
url="$HF_ENDPOINT/bench/big/resolve/$commit/model.safetensors"
: >"$work/empty"

now () { "$PYTHON" -c 'import time; print(time.monotonic())'; }
calc () { awk "BEGIN { printf \"%.6f\\n\", $1 }"; }
best () { sort -g | head -n 1; }
best_rate () { sort -g | tail -n 1; }

curl_rates="$work/curl.rates"; curl_walls="$work/curl.walls"
fetch_rates="$work/fetch.rates"; fetch_walls="$work/fetch.walls"
run=0
while [ $run -lt "$RUNS" ]; do
    run=$((run + 1))
    rm -f "$work/out.bin"
    t0=$(now)
    curl -sfL -o "$work/out.bin" -w '%{speed_download}\n' "$url" >>"$curl_rates"
    sync "$work/out.bin"
    t1=$(now)
    calc "$t1 - $t0" >>"$curl_walls"

    rm -rf "$work/cache"
    t0=$(now)
    MLC_LLM_HOME="$work/cache" mlc-fetch HF://bench/big <"$work/empty" >/dev/null 2>"$work/err"
    t1=$(now)
    calc "$t1 - $t0" >>"$fetch_walls"
    # the meter's last line: "...: 100.0% 1.07 GB / 1.07 GB, 812 MB/s"
    tr '\r' '\n' <"$work/err" | grep '100.0%' | tail -n 1 |
        sed 's/.*, \([0-9.]*\) \([kMGT]*\)B\/s.*/\1 \2/' |
        awk '{m = $2 == "k" ? 1e3 : $2 == "M" ? 1e6 : $2 == "G" ? 1e9 : $2 == "T" ? 1e12 : 1; print $1 * m}' \
        >>"$fetch_rates"
    cmp "$work/out.bin" "$work/cache/model_weights/hf/bench/big/model.safetensors"
done

c_rate=$(best_rate <"$curl_rates"); f_rate=$(best_rate <"$fetch_rates")
c_wall=$(best <"$curl_walls"); f_wall=$(best <"$fetch_walls")
printf 'fetch benchmark: %s bytes (%s MiB) from fakehub.py on 127.0.0.1, best of %s runs, %s CPUs\n' \
    "$size" "$MB" "$RUNS" "$(nproc)"
printf '  download     curl -L -o                 %8.1f MB/s\n' "$(calc "$c_rate / 1000000")"
printf '  download     mlc-fetch (sha256 on)      %8.1f MB/s\n' "$(calc "$f_rate / 1000000")"
printf '  ratio        mlc-fetch / curl           %8.3f   (target >= 0.95)\n' "$(calc "$f_rate / $c_rate")"
printf '  end to end   curl -L -o && sync FILE    %8.2f s  %8.1f MB/s\n' "$c_wall" "$(calc "$size / $c_wall / 1000000")"
printf '  end to end   mlc-fetch (verified, published) %5.2f s  %8.1f MB/s\n' "$f_wall" "$(calc "$size / $f_wall / 1000000")"
printf '  ratio        end to end                 %8.3f\n' "$(calc "$c_wall / $f_wall")"
printf '  load average %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
