#!/bin/sh
# make install puts the tools and manual pages under DESTDIR/PREFIX.
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

test_expect_success 'every manual page renders without warnings' '
	for page in "$SRC_DIR"/man/*.[15]; do
		man --warnings -l "$page" >/dev/null 2>warn &&
		test_must_be_empty warn || return 1
	done
'

test_done
