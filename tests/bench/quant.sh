#!/bin/sh
# Benchmark mlc-quant: the synthetic 1.1B-parameter bf16 llama (mkmodel
# --big, TinyLlama-1.1B's shapes, about 2.2 GB) to q4f16_1. Prints input
# GB/s, wall time, peak RSS and CPU time (from /usr/bin/time -v). Targets on a 2-core
# machine: at least 1 GB/s of input and less than 1 GB of RSS.
#
#   tests/bench/quant.sh             (after make; MLC_BUILD=build by default)
#
# The model is generated on demand into $MLC_BENCH_DIR (default
# build/bench) and reused by later runs; it is never checked in.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MLC_BUILD:-$top/build}
dir=${MLC_BENCH_DIR:-$build/bench}
PATH="$build/bin:$build/tests:$PATH"
model="$dir/tinyllama-1.1b-bf16"
mkdir -p "$dir"
if [ ! -f "$model/model.safetensors" ]; then
    echo "generating $model (about 2.2 GB)..." >&2
    rm -rf "$model"
    mkmodel --big -o "$model"
fi
cat >"$dir/mlc-chat-config.json" <<'JSON'
{"model_type": "llama", "quantization": "q4f16_1",
 "model_config": {"hidden_size": 2048, "intermediate_size": 5632, "num_attention_heads": 32,
  "num_key_value_heads": 4, "num_hidden_layers": 22, "vocab_size": 32000, "head_dim": 64}}
JSON
bytes=$(wc -c <"$model/model.safetensors" | tr -d ' ')
# warm the page cache so the figure measures conversion, not the disk
cat "$model/model.safetensors" >/dev/null

run () { # label, then extra arguments
    label=$1
    shift
    rm -rf "$dir/out"
    /usr/bin/time -v mlc-quant -q --model "$model" --config "$dir/mlc-chat-config.json" \
        -o "$dir/out" --stream /dev/null "$@" 2>"$dir/time.txt"
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.txt")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt")
    user=$(sed -n 's/.*User time (seconds): //p' "$dir/time.txt")
    sys=$(sed -n 's/.*System time (seconds): //p' "$dir/time.txt")
    secs=$(echo "$wall" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    # CPU seconds too: on a shared machine the wall time also measures the
    # other processes
    awk -v b="$bytes" -v s="$secs" -v r="$rss" -v l="$label" -v u="$user" -v k="$sys" 'BEGIN {
        printf "%-22s input %.2f GB  wall %6.2f s  %5.2f GB/s  peak RSS %4.0f MB  CPU %.2f+%.2f s\n",
               l, b / 1e9, s, b / 1e9 / s, r / 1024, u, k }'
}

echo "mlc-quant q4f16_1 of a 1.1B bf16 llama ($(nproc) CPUs)"
run "all threads, SIMD"
run "1 thread, SIMD" -j1
MLC_QUANT_SIMD=0 run "all threads, scalar"
ls "$dir/out" | grep -c params_shard | sed 's/^/shards written: /'
rm -rf "$dir/out"
