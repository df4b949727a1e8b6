#!/bin/sh
# mlc-dump: JSON lines out, msgpack back in, exact round trips, clear errors.
. "$(dirname "$0")/lib.sh"

cat >records.jsonl <<'JSON'
{"type":"model","source":"HF://org/name","path":"/cache/x","files":[{"name":"config.json","size":493,"sha256":"ab"}]}
{"type":"config","path":"out/mlc-chat-config.json","config":{"vocab_size":512,"temperature":0.7,"stop":null,"ok":true}}
{"type":"tensor","name":"w","data":{"$bin":"AAECAwQ="},"f":{"$f32":0.5},"big":{"$uint":"18446744073709551615"},"x":{"$float":"nan"}}
JSON

test_expect_success 'pack then dump gives the same lines back' '
	mlc-dump --pack records.jsonl >s.mp &&
	mlc-dump s.mp >again.jsonl &&
	test_cmp records.jsonl again.jsonl
'

test_expect_success 'dump then pack gives the same bytes back' '
	mlc-dump s.mp | mlc-dump --pack >s2.mp &&
	cmp s.mp s2.mp
'

test_expect_success 'stdin works and --type keeps one type' '
	mlc-dump --type config <s.mp >config.jsonl &&
	test_line_count = 1 config.jsonl &&
	test_grep "\"type\":\"config\"" config.jsonl
'

test_expect_success '--pretty output packs back to the same stream' '
	mlc-dump --pretty s.mp >pretty.json &&
	test_grep "^  \"type\": \"model\",$" pretty.json &&
	mlc-dump --pack pretty.json >s3.mp &&
	cmp s.mp s3.mp
'

test_expect_success 'floats print as Python repr and read back exactly' '
	echo "{\"type\":\"f\",\"a\":0.1,\"b\":1e-05,\"c\":1e+16,\"d\":3616972800.0,\"e\":-0.0}" >f.jsonl &&
	mlc-dump --pack f.jsonl | mlc-dump >f2.jsonl &&
	test_cmp f.jsonl f2.jsonl
'

test_expect_success 'a truncated stream names the byte count' '
	head -c 50 s.mp >cut.mp &&
	test_must_fail mlc-dump cut.mp >out 2>err &&
	test_grep "mlc-dump: error: cut.mp: stream ended inside a record after 50 bytes" err
'

test_expect_success 'garbage is reported as not a msgpack map' '
	echo "hello" >garbage &&
	test_must_fail mlc-dump garbage 2>err &&
	test_grep "garbage: byte 0: not a msgpack map" err
'

test_expect_success 'a record after valid ones is located by its byte offset' '
	cp s.mp tail.mp && printf "\222\001\002" >>tail.mp &&
	size=$(wc -c <s.mp | tr -d " ") &&
	test_must_fail mlc-dump tail.mp >/dev/null 2>err &&
	test_grep "byte $size: not a msgpack map" err
'

test_expect_success 'pack rejects lines that are not records, naming the line' '
	printf "{\"type\":\"a\"}\n[1,2]\n" >bad.jsonl &&
	test_must_fail mlc-dump --pack bad.jsonl >/dev/null 2>err &&
	test_grep "bad.jsonl:2: not a record" err &&
	printf "{\"type\":\"a\"}\n{\"type\":\"b\",\"x\":{\"\$bogus\":1}}\n" >tag.jsonl &&
	test_must_fail mlc-dump --pack tag.jsonl >/dev/null 2>err &&
	test_grep "tag.jsonl:2: unknown tag" err
'

test_expect_success 'a closed downstream pipe ends quietly with status 141' '
	i=0; while [ $i -lt 3000 ]; do cat records.jsonl; i=$((i+1)); done >many.jsonl &&
	mlc-dump --pack many.jsonl >many.mp &&
	{ mlc-dump many.mp 2>err; echo $? >rc; } | head -c 10 >/dev/null &&
	test "$(cat rc)" = 141 &&
	test_must_be_empty err
'

test_expect_success 'usage errors exit 2; --help and --version exit 0' '
	mlc-dump --help | test_grep "Usage: mlc-dump" &&
	mlc-dump --version | test_grep "mlc-dump (mlc-pipe)" &&
	{ mlc-dump --bogus 2>err; test $? = 2; } &&
	test_grep "Try .mlc-dump --help." err
'

test_done
