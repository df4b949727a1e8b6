#!/bin/sh
# Benchmark the Vulkan executor on the synthetic 1.1B-parameter llama
# (mkmodel --big, TinyLlama-1.1B's shapes) quantized to q4f16_1: prompt
# processing (pp: one prefill of PP tokens) and token generation (tg: TG
# decode steps after it), in tokens/s, min/median/max over MLC_BENCH_RUNS
# runs (3), with the process's CPU milliseconds a token, the kernel
# time split of the last run (mlc-check --profile), and two yardsticks from
# the same moment: memory bandwidth (membw) and the load average.
#
#   tests/bench/vulkan.sh            (after make; MLC_BUILD=build by default)
#   MLC_BENCH_LEVEL=2 MLC_BENCH_PP=64 MLC_BENCH_TG=16 tests/bench/vulkan.sh
#
# The device is the loader's default (lavapipe on a machine without a GPU;
# LP_NUM_THREADS sets lavapipe's threads). The model and the libraries are
# generated on demand into $MLC_BENCH_DIR (default build/bench) and reused.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MLC_BUILD:-$top/build}
dir=${MLC_BENCH_DIR:-$build/bench}
level=${MLC_BENCH_LEVEL:-3}
runs=${MLC_BENCH_RUNS:-3}
pp=${MLC_BENCH_PP:-128}
tg=${MLC_BENCH_TG:-32}
PATH="$build/bin:$build/tests:$PATH"
model="$dir/tinyllama-1.1b-bf16"
lib="$dir/vk-q4f16_1"
mkdir -p "$dir"

if [ ! -f "$model/model.safetensors" ]; then
    echo "generating $model (about 2.2 GB)..." >&2
    rm -rf "$model"
    mkmodel --big -o "$model"
fi
# token ids are what the benchmark feeds; any tokenizer lets the tools load
[ -f "$model/tokenizer.json" ] || cp "$top/tests/fixtures/stories260K/tokenizer.json" "$model/"
if [ ! -f "$lib.lower.mp" ]; then
    echo "quantizing to q4f16_1 and lowering..." >&2
    rm -rf "$lib"
    mlc-fetch -q "$model" </dev/null | mlc-cfg -q --quantization q4f16_1 --max-batch-size 4 -o "$lib" |
        mlc-quant -q | mlc-lower -q >"$lib.lower.mp.tmp"
    mv "$lib.lower.mp.tmp" "$lib.lower.mp"
fi
mlc-emit -q -O"$level" --target vulkan -o "$lib/bench-O$level.tar" <"$lib.lower.mp" >"$lib.O$level.mp"

ids=$(awk -v n=$((pp + tg)) 'BEGIN { s = 7; for (i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", i ? "," : "", 3 + s % 31000 } }')
work=$(mktemp -d "${TMPDIR:-/tmp}/mlc-bench-vk.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "vulkan benchmark: 1.1B llama q4f16_1, mlc-emit -O$level, pp $pp tokens, tg $tg tokens, $runs runs, $(nproc) CPUs"
mlc-check --list-devices | sed -n 's/^\(vulkan:[0-9]*\)\t\(.*\), the default$/  device       \1 \2/p'
printf '  load before  %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
membw 1024 "$(nproc)" 5 | sed 's/^/  yardstick    /'

# the first run compiles the pipelines (Mesa caches them), not timed
mlc-check -q --mode interactive --score "$(echo "$ids" | cut -d, -f1-2)" --prefill 1 --logits-out /dev/null \
    <"$lib.O$level.mp" 2>/dev/null
r=0
while [ $r -lt "$runs" ]; do
    r=$((r + 1))
    mlc-check -q --mode interactive --profile --score "$ids" --prefill "$pp" --logits-out /dev/null \
        <"$lib.O$level.mp" 2>"$work/profile.$r"
    # "  decode  32 calls  32 tokens  T ms  R tokens/s  C CPU ms/token"
    awk '$1 == "prefill" { print $8 }' "$work/profile.$r" >>"$work/pp"
    awk '$1 == "decode" { print $8 }' "$work/profile.$r" >>"$work/tg"
    awk '$1 == "prefill" { print $10 }' "$work/profile.$r" >>"$work/ppcpu"
    awk '$1 == "decode" { print $10 }' "$work/profile.$r" >>"$work/tgcpu"
done
stats () { sort -g "$1" | awk '{ v[NR] = $1 } END { printf "min %8.2f  median %8.2f  max %8.2f", v[1], v[int((NR + 1) / 2)], v[NR] }'; }
printf '  pp %4d      tokens/s          %s\n' "$pp" "$(stats "$work/pp")"
printf '  tg %4d      tokens/s          %s\n' "$tg" "$(stats "$work/tg")"
# CPU time of the process (lavapipe's threads included) a token: the work,
# which a busy machine does not inflate; on an idle machine with N cores the
# wall time approaches it divided by N
printf '  pp           CPU ms/token      %s\n' "$(stats "$work/ppcpu")"
printf '  tg           CPU ms/token      %s\n' "$(stats "$work/tgcpu")"
printf '  load after   %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "  kernel times of the last run (prefill and decode together):"
sed -n '/^  kernel /,$p' "$work/profile.$runs" | sed 's/^/  /'
