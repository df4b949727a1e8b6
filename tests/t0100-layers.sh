#!/bin/sh
# The sources keep their layers: plumbing <- formats <- compiler <- engine
# <- tools (scripts/check-layers).
. "$(dirname "$0")/lib.sh"

test_expect_success 'no source includes a header from a higher layer' '
	"$SRC_DIR/scripts/check-layers" "$SRC_DIR" >out 2>&1 ||
	{ cat out; false; }
'

# A small tree with one file in each layer, to see the check fail.
mktree () {
	rm -rf tree && mkdir -p tree/common/lower tree/common/engine tree/formats/tokenizer tree/tools tree/tests &&
	echo "int a;" >tree/common/a.h &&
	echo "#include \"common/a.h\"" >tree/formats/f.h &&
	echo "#include \"formats/f.h\"" >tree/formats/tokenizer/t.h &&
	echo "#include \"formats/tokenizer/t.h\"" >tree/common/lower/l.h &&
	echo "#include \"common/lower/l.h\"" >tree/common/engine/e.h &&
	echo "#include \"common/engine/e.h\"" >tree/tools/m.c
}

test_expect_success 'a tree that keeps its layers passes' '
	mktree && "$SRC_DIR/scripts/check-layers" tree
'

test_expect_success 'plumbing including a format is named with its line' '
	mktree &&
	printf "int b;\n#include \"formats/f.h\"\n" >tree/common/b.c &&
	test_must_fail "$SRC_DIR/scripts/check-layers" tree >out &&
	test_grep "common/b.c:2: includes \"formats/f.h\" from a higher layer (1 above 0)" out &&
	test_line_count = 1 out
'

test_expect_success 'the compiler including the engine fails' '
	mktree &&
	echo "#include \"common/engine/e.h\"" >tree/common/lower/p.c &&
	test_must_fail "$SRC_DIR/scripts/check-layers" tree >out &&
	test_grep "common/lower/p.c:1: .* from a higher layer (3 above 2)" out
'

test_expect_success 'a relative include is refused: its layer cannot be told' '
	mktree &&
	echo "#include \"f.h\"" >tree/formats/g.c &&
	test_must_fail "$SRC_DIR/scripts/check-layers" tree >out &&
	test_grep "formats/g.c:1: includes \"f.h\", which is not a header path" out
'

test_expect_success 'a new room under common/ needs a layer first' '
	mktree && mkdir tree/common/new &&
	echo "#include \"common/a.h\"" >tree/common/new/n.c &&
	test_must_fail "$SRC_DIR/scripts/check-layers" tree >out &&
	test_grep "common/new/n.c is in no layer" out
'

test_done
