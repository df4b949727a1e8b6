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
#                 (created, with its parents)
#
# When a stage fails, the stages after it only see a cut stream: the script
# shows the first failing stage's own message (and the notes of the stages
# before it), names that stage, and exits with its status.
#
# Example:
#   scripts/pipeline.sh tests/fixtures/stories260K q4f16_1 dist/stories --raw
set -eu
[ $# -ge 3 ] || { echo "usage: $0 MODEL QUANTIZATION OUT_DIR [mlc-check options...]" >&2; exit 2; }
model=$1 quant=$2 out=$3
shift 3
mkdir -p "$out"
logs=$(mktemp -d "${TMPDIR:-/tmp}/mlc-pipeline.XXXXXX")
trap 'rm -rf "$logs"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stage NAME CMD...: run CMD with its messages kept in $logs/NAME, and its
# exit status in $logs/NAME.status
stage () {
	name=$1
	shift
	set +e
	"$@" 2>"$logs/$name"
	echo $? >"$logs/$name.status"
}

stage mlc-fetch mlc-fetch "$model" </dev/null |
	stage mlc-cfg mlc-cfg --quantization "$quant" -o "$out" |
	stage mlc-quant mlc-quant |
	stage mlc-lower mlc-lower |
	stage mlc-emit mlc-emit --target cpu |
	stage mlc-check mlc-check "$@" >"$out.stream.mp"

# The stage that failed first in the pipe's order is the cause; one that
# only lost its reader (141, a broken pipe) was stopped by a later one.
stages="mlc-fetch mlc-cfg mlc-quant mlc-lower mlc-emit mlc-check"
failed=
for name in $stages; do
	status=$(cat "$logs/$name.status")
	if [ "$status" -ne 0 ] && [ "$status" -ne 141 ]; then failed=$name; break; fi
done
if [ -z "$failed" ]; then
	for name in $stages; do
		[ "$(cat "$logs/$name.status")" -eq 0 ] || { failed=$name; break; }
	done
fi
for name in $stages; do
	status=$(cat "$logs/$name.status")
	[ "$status" -eq 141 ] && [ "$name" != "$failed" ] && continue
	cat "$logs/$name" >&2
	if [ "$name" = "$failed" ]; then
		# mlc-check's own verdict (a failed check) is the pipeline's result
		[ "$name" = mlc-check ] || echo "pipeline.sh: stopped at $name (exit status $status)" >&2
		exit "$status"
	fi
done
echo "$out.stream.mp: the whole pipeline's records (mlc-dump $out.stream.mp)" >&2
