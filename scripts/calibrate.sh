#!/bin/sh
# The FP8 weight-and-activation workflow, as MLC-LLM documents it
# (mlc-quant(1)): the calibration build (e4m3_e4m3_f16_max_calibrate), its
# activation scales measured on a ShareGPT dataset (mlc-check --calibrate),
# then the inference build (e4m3_e4m3_f16), which reuses the calibrated
# weights, checked.
#
#   scripts/calibrate.sh [OPTIONS] MODEL DATASET OUT_DIR [mlc-check options...]
#
#   MODEL         HF://org/name, a hub URL or a local model directory
#   DATASET       ShareGPT-style JSON: [{"conversations": [{"from", "value"}, ...]}, ...]
#   OUT_DIR       where mlc-chat-config.json, the weights and the libraries go
#                 (created, with its parents)
#   --num-calibration-samples N   requests drawn from DATASET (default 16)
#   --seed S                      the draw's seed (default 0)
#   --target cpu|vulkan           the inference library's target (default cpu;
#                                 calibration itself runs on the CPU)
#
# Writes OUT_DIR/NAME-calibrate-cpu.tar (the calibration build's library)
# and OUT_DIR/NAME-TARGET.tar (the inference build's), and OUT_DIR.stream.mp:
# every stage's records, the `calibration` record and the verdict last.
# A stage that fails stops the script, which names it and exits with its
# status (mlc-check's verdict is the script's result).
#
# Example:
#   scripts/calibrate.sh tests/fixtures/stories260K \
#       tests/fixtures/calibration/sharegpt-stories.json dist/stories-fp8
set -eu
usage="usage: $0 [--num-calibration-samples N] [--seed S] [--target cpu|vulkan] MODEL DATASET OUT_DIR [mlc-check options...]"
samples=16 seed=0 target=cpu
while [ $# -gt 0 ]; do
	case $1 in
	--num-calibration-samples) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; samples=$2; shift 2 ;;
	--num-calibration-samples=*) samples=${1#*=}; shift ;;
	--seed) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; seed=$2; shift 2 ;;
	--seed=*) seed=${1#*=}; shift ;;
	--target) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; target=$2; shift 2 ;;
	--target=*) target=${1#*=}; shift ;;
	--) shift; break ;;
	-*) echo "$0: unknown option '$1'" >&2; echo "$usage" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 3 ] || { echo "$usage" >&2; exit 2; }
model=$1 dataset=$2 out=$3
shift 3
case $target in cpu|vulkan) ;; *) echo "$0: --target must be cpu or vulkan, not '$target'" >&2; exit 2 ;; esac
mkdir -p "$out"
name=$(basename "$out")
work=$(mktemp -d "${TMPDIR:-/tmp}/mlc-calibrate.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step STAGE IN OUT CMD...: CMD reads the stream IN and writes the stream
# OUT; on failure the script stops, naming STAGE
step () {
	stage=$1 in=$2 to=$3
	shift 3
	set +e
	"$@" <"$in" >"$to"
	status=$?
	set -e
	if [ "$status" -ne 0 ]; then
		echo "calibrate.sh: stopped at $stage (exit status $status)" >&2
		exit "$status"
	fi
}

: >"$work/empty"
step "mlc-fetch" "$work/empty" "$work/1.mp" mlc-fetch -q "$model"
# 1. the calibration build: FP8 weights, activations measured at every call
step "calibration build: mlc-cfg" "$work/1.mp" "$work/2.mp" \
	mlc-cfg -q --quantization e4m3_e4m3_f16_max_calibrate -o "$out"
step "calibration build: mlc-quant" "$work/2.mp" "$work/3.mp" mlc-quant -q
step "calibration build: mlc-lower" "$work/3.mp" "$work/4.mp" mlc-lower -q
step "calibration build: mlc-emit" "$work/4.mp" "$work/5.mp" \
	mlc-emit -q --target cpu -o "$out/$name-calibrate-cpu.tar"
# 2. the activation scales, written into the tensor cache
step "calibration: mlc-check --calibrate" "$work/5.mp" "$work/6.mp" \
	mlc-check --calibrate="$dataset" --num-calibration-samples "$samples" --seed "$seed"
# 3. the inference build over the calibrated weights, then the check
step "inference build: mlc-cfg" "$work/6.mp" "$work/7.mp" mlc-cfg -q --quantization e4m3_e4m3_f16 -o "$out"
step "inference build: mlc-quant" "$work/7.mp" "$work/8.mp" mlc-quant -q
step "inference build: mlc-lower" "$work/8.mp" "$work/9.mp" mlc-lower -q
step "inference build: mlc-emit" "$work/9.mp" "$work/10.mp" mlc-emit -q --target "$target"
# the verdict is kept whatever it is
set +e
mlc-check "$@" <"$work/10.mp" >"$work/11.mp"
status=$?
set -e
mv "$work/11.mp" "$out.stream.mp"
echo "$out.stream.mp: the whole flow's records (mlc-dump $out.stream.mp)" >&2
exit "$status"
