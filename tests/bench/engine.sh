#!/bin/sh
# Benchmark the CPU engine on the synthetic 1.1B-parameter llama (mkmodel
# --big, TinyLlama-1.1B's shapes) for q4f16_1, q4f32_1 and q0f16:
# mlc-check --bench prefill (pp512) and decode (tg128) tokens/s with 1 and 2
# threads, each beside the memory-bandwidth bound measured in the same run
# (the bytes a decode step reads against a plain read of memory), and the
# load time. Targets on a 2-core machine, q4f16_1 with 2 threads: decode
# >= 60 tokens/s and >= 90% of the bound, prefill >= 200 tokens/s; q0f16
# decode >= 20 tokens/s; load <= 0.1 s warm. On a shared machine only the
# ratios mean much: the machine's load is printed with the figures.
#
#   tests/bench/engine.sh [SCHEME...]     (after make; MLC_BUILD=build)
#
# Environment: MLC_BENCH_DIR (default build/bench) keeps the generated
# models (2.2 GB of bf16, then about 0.6 GB per 4-bit scheme and 2.2 GB for
# q0f16), which are reused by later runs and never checked in;
# MLC_BENCH_THREADS (default 1,2), MLC_BENCH_TESTS (default pp512,tg128),
# MLC_BENCH_REPEAT (default 5). After each scheme's table, as many
# single-threaded decode runs as the largest thread count run at once, side
# by side: their sum is what the cores give this kernel with no thread pool
# involved, the yardstick for the multi-threaded tg row beside the
# bandwidth bound. With LLAMA_BENCH (a llama-bench binary) and LLAMA_MODEL
# (GGUFs of the same weights, separated by spaces: e.g. written by
# tests/helpers/gguf_write.py --type f16 from $MLC_BENCH_DIR's bf16 model,
# and that quantized to Q4_0 by llama-quantize), llama-bench runs the same
# tests right after, for comparison.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MLC_BUILD:-$top/build}
dir=${MLC_BENCH_DIR:-$build/bench}
threads=${MLC_BENCH_THREADS:-1,2}
tests=${MLC_BENCH_TESTS:-pp512,tg128}
repeat=${MLC_BENCH_REPEAT:-5}
PATH="$build/bin:$build/tests:$PATH"
src="$dir/tinyllama-1.1b-bf16"
mkdir -p "$dir"
if [ ! -f "$src/model.safetensors" ]; then
    echo "generating $src (about 2.2 GB)..." >&2
    rm -rf "$src"
    mkmodel --big --tokenizer "$top/tests/fixtures/stories260K" -o "$src"
fi

# build SCHEME: the pipeline into $dir/SCHEME, once
build_scheme () {
    out="$dir/$1"
    [ -f "$out.mp" ] && [ -d "$out" ] && return 0
    echo "building $1..." >&2
    rm -rf "$out" "$out.mp"
    mlc-fetch -q "$src" </dev/null >"$out.1.mp"
    mlc-cfg -q --quantization "$1" -o "$out" <"$out.1.mp" >"$out.2.mp"
    mlc-quant -q <"$out.2.mp" >"$out.3.mp"
    mlc-lower -q <"$out.3.mp" >"$out.4.mp"
    mlc-emit -q <"$out.4.mp" >"$out.5.mp"
    mv "$out.5.mp" "$out.mp"
    rm -f "$out".[1-4].mp
}

# side_by_side SCHEME: as many single-threaded decoders at once as the
# largest thread count, each on its own process: what the machine gives
# that many cores running this kernel, with no thread pool involved. The
# probe's bound counts bandwidth only; where the cores share arithmetic
# (or a memory path) the sum here is the nearer ceiling for --threads N.
side_by_side () {
    n=$(echo "$threads" | tr ',' '\n' | sort -n | tail -n 1)
    tg=$(echo "$tests" | tr ',' '\n' | grep '^tg' | head -n 1)
    [ "$n" -gt 1 ] && [ -n "$tg" ] || return 0
    i=0
    while [ $i -lt "$n" ]; do
        mlc-check -q --library "$dir/$1/$1-cpu.tar" --model "$dir/$1" \
            --bench="$tg" --threads=1 --repeat="$repeat" >"$dir/side.$i" &
        i=$((i + 1))
    done
    wait
    # the median column of each table's row
    cat "$dir"/side.* | awk -F'|' -v n="$n" -v tg="$tg" '
        $2 ~ /[a-z]/ && $4 ~ /tg/ { m = $7 + 0; list = list (list ? " + " : "") sprintf("%.2f", m); sum += m }
        END { printf "   side by side: %d single-threaded %s runs at once, medians %s = %.2f t/s together\n", n, tg, list, sum }'
    rm -f "$dir"/side.*
}

[ $# -gt 0 ] || set -- q4f16_1 q4f32_1 q0f16
echo "CPU engine on a 1.1B llama ($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))"
for scheme in "$@"; do
    build_scheme "$scheme"
    # Warm the page cache so that figures measure the engine, not the disk,
    # and the same way every run: drop the shards from the cache, then let
    # mlc-check map them back in. Its mappings ask for huge pages, so the
    # kernel may fill the cache in 2 MiB folios; a `cat` would leave small
    # ones, which on a virtual machine can cost decode several times over
    # (q0f16, one thread: 1-9 tokens/s against 9-14). dd's nocache drops
    # only clean pages.
    for f in "$dir/$scheme"/params_shard_*.bin; do dd if="$f" iflag=nocache count=0 status=none; done
    mlc-check -q --library "$dir/$scheme/$scheme-cpu.tar" --model "$dir/$scheme" \
        --bench=tg1 --threads=1 --repeat=1 >/dev/null
    echo
    echo "== $scheme   (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    mlc-check -q --library "$dir/$scheme/$scheme-cpu.tar" --model "$dir/$scheme" \
        --bench="$tests" --threads="$threads" --repeat="$repeat"
    side_by_side "$scheme"
    echo "   (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
done
if [ -n "${LLAMA_BENCH:-}" ] && [ -n "${LLAMA_MODEL:-}" ]; then
    pp=$(echo "$tests" | tr ',' '\n' | sed -n 's/^pp//p' | head -n 1)
    tg=$(echo "$tests" | tr ',' '\n' | sed -n 's/^tg//p' | head -n 1)
    for gguf in $LLAMA_MODEL; do
        echo
        echo "== llama-bench, $(basename "$gguf")   (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
        "$LLAMA_BENCH" -m "$gguf" -p "${pp:-512}" -n "${tg:-128}" -t "$threads" -r "$repeat" 2>/dev/null | grep '^|'
        echo "   (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
    done
fi
