#!/bin/sh
# make install puts the tools, manual pages, libmlc.a with its headers and
# pkg-config file, the scripts and bash completion under DESTDIR/PREFIX.
. "$(dirname "$0")/lib.sh"

test_expect_success 'make install PREFIX=/usr DESTDIR=...' '
	make -s --no-print-directory -C "$SRC_DIR" BUILD="$MLC_BUILD" PREFIX=/usr DESTDIR="$TRASH/inst" install >out 2>&1 &&
	for t in dump fetch cfg quant lower emit check; do
		test -x inst/usr/bin/mlc-$t &&
		inst/usr/bin/mlc-$t --version | test_grep "mlc-$t (mlc-pipe)" &&
		test -f inst/usr/share/man/man1/mlc-$t.1 || return 1
	done &&
	test -f inst/usr/share/man/man5/mlc-stream.5 &&
	MANPATH="$TRASH/inst/usr/share/man" man -w mlc-stream | test_grep "man5/mlc-stream.5"
'

test_expect_success 'the library, its headers and pkg-config build a program of one' '
	test -f inst/usr/lib/libmlc.a && test -f inst/usr/include/mlc-pipe/common/stream.h &&
	test -f inst/usr/include/mlc-pipe/formats/tokenizer/tokenizer.h &&
	cat >prog.c <<-EOF &&
	#include "common/stream.h"
	#include "formats/dtype.h"
	int main(void)
	{
	    struct stream_writer w;
	    stream_writer_init_fd(&w, 1, "<stdout>");
	    struct rec_builder b;
	    rb_init(&b, "hello");
	    rb_str(&b, "dtype", dtype_name(DT_BF16));
	    rb_write(&b, &w);
	    return stream_writer_close(&w) != 0;
	}
	EOF
	pc="pkg-config --define-variable=prefix=$TRASH/inst/usr" &&
	# a sanitizer build installs a sanitized library: link it alike
	san= &&
	if nm inst/usr/lib/libmlc.a 2>/dev/null | grep -q __asan_report; then
		san="-fsanitize=address,undefined"
	fi &&
	PKG_CONFIG_PATH="$TRASH/inst/usr/lib/pkgconfig" $pc --modversion mlc-pipe | test_grep "^[0-9]" &&
	cc $san -o prog prog.c $(PKG_CONFIG_PATH="$TRASH/inst/usr/lib/pkgconfig" $pc --cflags --libs mlc-pipe) &&
	./prog >hello.mp &&
	mlc-dump hello.mp >hello.json &&
	echo "{\"type\":\"hello\",\"dtype\":\"bfloat16\"}" >want && test_cmp want hello.json
'

test_expect_success 'the scripts and the bash completion are installed' '
	test -x inst/usr/share/mlc-pipe/pipeline.sh && test -x inst/usr/share/mlc-pipe/calibrate.sh &&
	test -f inst/usr/share/mlc-pipe/model.mk && test -f inst/usr/share/mlc-pipe/build.ninja &&
	for t in dump fetch cfg quant lower emit check; do
		test -f inst/usr/share/bash-completion/completions/mlc-$t || return 1
	done &&
	bash -c ". inst/usr/share/bash-completion/completions/mlc-check
		COMP_WORDS=(mlc-check --tokenize); COMP_CWORD=1
		_mlc_pipe mlc-check --tokenize mlc-check; printf \"%s\n\" \"\${COMPREPLY[@]}\"" >words &&
	printf -- "--tokenize\n--tokenize-file\n" >want && test_cmp want words &&
	bash -c ". inst/usr/share/bash-completion/completions/mlc-cfg
		COMP_WORDS=(mlc-cfg --quantization q4f16_); COMP_CWORD=2
		_mlc_pipe mlc-cfg q4f16_ --quantization; printf \"%s\n\" \"\${COMPREPLY[@]}\"" >words &&
	printf -- "q4f16_0\nq4f16_1\nq4f16_2\n" >want && test_cmp want words
'

test_expect_success 'every manual page renders without warnings' '
	for page in "$SRC_DIR"/man/*.[15]; do
		man --warnings -l "$page" >/dev/null 2>warn &&
		test_must_be_empty warn || return 1
	done
'

test_done
