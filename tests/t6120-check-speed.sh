#!/bin/sh
# mlc-check's speed report on stories260K: the speed line of the summary,
# --bench's table (every test for every thread count, with the bandwidth
# probe and the decode bound beside tg tests), and --kernels. What is
# checked is the report's shape and arithmetic, never a speed: speed is for
# the benchmarks (tests/bench/engine.sh). And what makes loading fast: the
# weights are used where the shards are mapped, float32 ones in their
# bfloat16 storage, with no float32 copy (measured by peak RSS).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/pipeline-lib.sh"

test_expect_success 'set up q4f16_1' '
	build_model "$STORIES" q4f16_1 q4
'

test_expect_success 'the summary ends with load time, prefill and decode speed' '
	mlc-check --raw --prompt "Once upon a time" --max-tokens 8 --kernels generic --threads 2 <q4.mp >/dev/null 2>err &&
	test_grep "^mlc-check: speed: load [0-9.]* s, prefill [0-9]* tokens at [0-9.]* tokens/s, decode [0-9]* tokens at [0-9.]* tokens/s (generic kernels, 2 threads)$" err
'

test_expect_success '--bench prints a row per test and thread count, the bound beside tg' '
	mlc-check -q --library q4/q4-cpu.tar --model q4 --bench=pp16,tg8 --repeat 2 --threads 1,2 --kernels generic >table &&
	test_grep "^model: llama q4f16_1, 0.00 B parameters" table &&
	test_line_count = 9 table &&
	$PYTHON - <<-PY
	rows = [l.split("|")[1:-1] for l in open("table") if l.startswith("| generic")]
	assert [(r[1].strip(), r[2].strip()) for r in rows] == [("1", "pp16"), ("1", "tg8"), ("2", "pp16"), ("2", "tg8")], rows
	for r in rows:
	    mean, sd = (float(x) for x in r[3].split("±"))
	    lo, med, hi = float(r[4]), float(r[5]), float(r[6])
	    assert 0 < lo <= med <= hi and lo <= mean <= hi and sd >= 0, r
	    gbs = float(r[7].split()[0])
	    assert gbs > 0.1, r
	    if r[2].strip().startswith("tg"):
	        bound, share = float(r[8]), float(r[9].strip().rstrip("%"))
	        assert bound > 0 and abs(share - 100 * med / bound) < 1, r
	    else:
	        assert not r[8].strip() and not r[9].strip(), r
	PY
'

test_expect_success '--bench refuses a malformed test list and a test past the context window' '
	test_must_fail mlc-check -q --library q4/q4-cpu.tar --model q4 --bench=xx5 2>err &&
	test_grep "tests are ppN or tgN" err &&
	test_must_fail mlc-check -q --library q4/q4-cpu.tar --model q4 --bench=tg5000 --repeat 1 2>err &&
	test_grep "tg5000 is longer than the context window (512 tokens)" err
'

test_expect_success '--kernels: every set passes the check; unknown ones are refused' '
	for k in reference generic auto; do
		mlc-check -q --raw --greedy --prompt "One day" --max-tokens 12 --kernels $k <q4.mp >$k.mp &&
		test "$(record_field $k.mp check "r[\"pass\"]")" = True || return 1
	done &&
	test_must_fail mlc-check -q --raw --kernels sse9 <q4.mp >/dev/null 2>err &&
	test_grep "kernels .sse9. are not known: auto, reference, generic" err &&
	MLC_KERNELS=sse9 test_must_fail mlc-check -q --raw <q4.mp >/dev/null 2>err &&
	test_grep "MLC_KERNELS: kernels .sse9. are not known" err
'

test_expect_success 'q0f32 runs on its bfloat16 storage, mapped, with no float32 copy' '
	mkmodel --arch llama --dtype bf16 --hidden 512 --intermediate 1536 --layers 8 --heads 8 --kv-heads 8 \
		--vocab 512 --tokenizer "$STORIES" -o mid-src &&
	build_model mid-src q0f32 mid &&
	$PYTHON - <<-PY
	import glob, os, resource, subprocess
	shards = sum(os.path.getsize(f) for f in glob.glob("mid/params_shard_*.bin"))
	subprocess.run(["mlc-check", "-q", "--generate", "--prompt", "Once upon", "--max-tokens", "8", "--threads", "2"],
	               stdin=open("mid.mp"), stdout=subprocess.DEVNULL, check=True)
	peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
	print("shards %.1f MB, peak RSS %.1f MB" % (shards / 1e6, peak / 1e6))
	# the shards themselves, mapped, plus the engine: a float32 copy of the
	# weights would add twice the shards
	assert shards > 50e6 and peak < 2 * shards, (shards, peak)
	PY
'

test_done
