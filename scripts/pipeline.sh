#!/bin/sh
# The whole workflow as one shell pipe: fetch (or check) a model, write its
# mlc-chat-config.json, quantize its weights, lower and emit the library,
# then load everything and judge the output. Each stage adds its record to
# the stream; the last one is the verdict (mlc-check exits 1 on a failure).
#
#   scripts/pipeline.sh MODEL QUANTIZATION OUT_DIR [mlc-check options...]
#
#   MODEL         HF://org/name, a hub URL or a local model directory
#   QUANTIZATION  q4f16_1, q0f32, ... (see mlc-quant(1))
#   OUT_DIR       where mlc-chat-config.json, the weights and the library go
#
# Example:
#   scripts/pipeline.sh tests/fixtures/stories260K q4f16_1 dist/stories --raw
set -eu
[ $# -ge 3 ] || { echo "usage: $0 MODEL QUANTIZATION OUT_DIR [mlc-check options...]" >&2; exit 2; }
model=$1 quant=$2 out=$3
shift 3
mlc-fetch "$model" </dev/null |
    mlc-cfg --quantization "$quant" -o "$out" |
    mlc-quant |
    mlc-lower |
    mlc-emit --target cpu |
    mlc-check "$@" >"$out.stream.mp"
echo "$out.stream.mp: the whole pipeline's records (mlc-dump $out.stream.mp)" >&2
