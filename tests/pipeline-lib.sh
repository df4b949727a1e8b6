# Shell functions shared by the pipeline tests (t6xxx), sourced after lib.sh.

STORIES="$FIXTURES/stories260K"
STORIES_IDS="1,403,407,261,378,432,383,286,261,376,298,315,421,395,317,426,338,401,396,267,337,410,408,419,292,411,322,265,282,295,433,426,385,328,432,358,394,261,370,432,352,266,268,388,426,338,391,266,267,337,335,312,432,398,312,286,267,414,270,333,415"

# build_model SRC SCHEME OUT [mlc-cfg options...]: run mlc-fetch, mlc-cfg,
# mlc-quant, mlc-lower and mlc-emit into the directory OUT, keeping each
# stage's stream as OUT.N-stage.mp and the last one as OUT.mp.
build_model () {
	src=$1 scheme=$2 out=$3
	shift 3
	mlc-fetch -q "$src" <"$TRASH/.empty" >"$out.1-fetch.mp" &&
	mlc-cfg -q --quantization "$scheme" -o "$out" "$@" <"$out.1-fetch.mp" >"$out.2-cfg.mp" &&
	mlc-quant -q <"$out.2-cfg.mp" >"$out.3-quant.mp" &&
	mlc-lower -q <"$out.3-quant.mp" >"$out.4-lower.mp" &&
	mlc-emit -q <"$out.4-lower.mp" >"$out.mp"
}

# record_field FILE TYPE EXPR: a Python expression over the last record of
# TYPE in a stream (bound to r), printed.
record_field () {
	mlc-dump --type "$2" "$1" | tail -n 1 >"$TRASH/.rec.json" &&
	$PYTHON -c "import json; r = json.load(open('$TRASH/.rec.json')); print($3)"
}

: >"$TRASH/.empty"
