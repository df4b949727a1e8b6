#!/bin/sh
# mlc-cfg's checks: every error is one line naming the file and the field,
# exits non-zero and writes nothing; warnings and notes go to stderr.
. "$(dirname "$0")/lib.sh"

ST="$FIXTURES/stories260K"
: >empty
mkmodel --arch llama --tokenizer "$ST" -o base >/dev/null || exit 1
mkmodel --arch qwen2 --tokenizer "$ST" -o qbase >/dev/null || exit 1
mkmodel --arch qwen3 --tokenizer "$ST" -o q3base >/dev/null || exit 1

# fresh NAME [FROM]: a copy of a fixture model to break
fresh () {
	rm -rf "$1" && cp -r "${2:-base}" "$1"
}

# edit DIR FILE PYTHON: change DIR/FILE (JSON, as c) with a Python statement
edit () {
	$PYTHON -c "
import json, sys
p = sys.argv[1] + '/' + sys.argv[2]
c = json.load(open(p))
$3
json.dump(c, open(p, 'w'), indent=2)
" "$1" "$2"
}

# fails DIR PATTERN [ARGS...]: mlc-cfg fails with one error line matching
# PATTERN and writes nothing
fails () {
	dir=$1 pattern=$2
	shift 2
	rm -rf "out-$dir"
	test_must_fail mlc-cfg --model "$dir" --quantization q4f16_1 -o "out-$dir" "$@" <empty >stdout 2>err &&
	test_grep "^mlc-cfg: error: .*$pattern" err &&
	test "$(grep -c "error:" err)" = 1 &&
	! test -s stdout &&
	! test -e "out-$dir/mlc-chat-config.json"
}

# run DIR [ARGS...]: mlc-cfg succeeds; its stderr is in err
run () {
	dir=$1
	shift
	mlc-cfg --model "$dir" --quantization q4f16_1 -o "out-$dir" "$@" <empty >/dev/null 2>err
}

field () {
	$PYTHON -c "import json, sys; print(json.dumps(eval('c' + sys.argv[2], {'c': json.load(open(sys.argv[1]))})))" \
		"out-$1/mlc-chat-config.json" "$2"
}

test_expect_success 'a directory without config.json' '
	mkdir nothing && fails nothing "nothing/config.json: missing"
'

test_expect_success 'config.json that is not JSON names the line and column' '
	fresh broken && printf "{\n  \"model_type\": \"llama\",\n  oops\n}" >broken/config.json &&
	fails broken "broken/config.json:3:"
'

test_expect_success 'model_type missing, or an architecture that is not supported' '
	fresh nomt && edit nomt config.json "del c[\"model_type\"]" &&
	fails nomt "config.json: missing field .model_type." &&
	fresh gpt2 && edit gpt2 config.json "c[\"model_type\"] = \"gpt2\"" &&
	fails gpt2 "model_type .gpt2. is not supported (supported: llama, mistral, qwen2, qwen3, gemma2, gemma3, gemma3_text, phi3)"
'

test_expect_success 'missing required fields' '
	fresh nohidden && edit nohidden config.json "del c[\"hidden_size\"]" &&
	fails nohidden "nohidden/config.json: missing field .hidden_size. (required for llama)" &&
	fresh noctx && edit noctx config.json "del c[\"max_position_embeddings\"]" &&
	fails noctx "noctx/config.json: missing field .max_position_embeddings." &&
	fresh q3nohd q3base && edit q3nohd config.json "del c[\"head_dim\"]" &&
	fails q3nohd "missing field .head_dim. (required for qwen3)" &&
	fresh q2noact qbase && edit q2noact config.json "del c[\"hidden_act\"]" &&
	fails q2noact "missing field .hidden_act. (required for qwen2)"
'

test_expect_success 'wrongly typed fields' '
	fresh t1 && edit t1 config.json "c[\"hidden_size\"] = \"64\"" &&
	fails t1 "t1/config.json: field .hidden_size. must be an integer" &&
	fresh t2 && edit t2 config.json "c[\"rms_norm_eps\"] = \"small\"" &&
	fails t2 "field .rms_norm_eps. must be a number" &&
	fresh t3 && edit t3 config.json "c[\"tie_word_embeddings\"] = \"yes\"" &&
	fails t3 "field .tie_word_embeddings. must be true or false" &&
	fresh t4 && edit t4 config.json "c[\"num_hidden_layers\"] = 0" &&
	fails t4 "num_hidden_layers is 0: must be at least 1" &&
	fresh t5 && edit t5 generation_config.json "c[\"temperature\"] = \"warm\"" &&
	fails t5 "generation_config.json: field .temperature. must be a number" &&
	fresh t6 && edit t6 generation_config.json "c[\"eos_token_id\"] = [2, \"x\"]" &&
	fails t6 "generation_config.json: eos_token_id\[1\] must be an integer" &&
	fresh t7 && edit t7 config.json "c[\"max_position_embeddings\"] = 2.5" &&
	fails t7 "field .max_position_embeddings. must be a positive integer" &&
	fresh t8 && edit t8 config.json "c[\"rope_scaling\"] = 8" &&
	fails t8 "field .rope_scaling. must be an object or null"
'

test_expect_success 'a tokenizer with more ids than vocab_size (the embedding rows)' '
	mkmodel --arch llama --vocab 300 --tokenizer "$ST" -o small >/dev/null &&
	fails small "tokenizer.json: token id 511 (.\"\\?.\\?\\?.) is past small/config.json.s vocab_size 300" &&
	rm small/tokenizer.json &&
	fails small "tokenizer.model: token id 511 is past small/config.json.s vocab_size 300"
'

test_expect_success 'bos and eos ids outside the vocabulary' '
	fresh eos && edit eos generation_config.json "c[\"eos_token_id\"] = [2, 512]" &&
	fails eos "generation_config.json: field .eos_token_id.: id 512 is outside the vocabulary (ids 0 to 511: vocab_size)" &&
	fresh bos && edit bos generation_config.json "del c[\"bos_token_id\"]" &&
	edit bos config.json "c[\"bos_token_id\"] = -1" &&
	fails bos "config.json: field .bos_token_id.: id -1 is outside" &&
	mkmodel --arch llama --vocab 1000 --tokenizer "$ST" -o wide >/dev/null &&
	edit wide generation_config.json "c[\"eos_token_id\"] = 700" &&
	fails wide "field .eos_token_id.: id 700 is outside the vocabulary (ids 0 to 511: wide/tokenizer.json)"
'

test_expect_success 'heads that do not divide, and head sizes that do not add up' '
	fresh kv && edit kv config.json "c[\"num_key_value_heads\"] = 3" &&
	fails kv "num_attention_heads 4 is not divisible by num_key_value_heads 3" &&
	fresh q2hd qbase && edit q2hd config.json "c[\"head_dim\"] = 48" &&
	fails q2hd "hidden_size 128 is not num_attention_heads 4 x head_dim 48 (qwen2 requires it)" &&
	fresh odd && edit odd config.json "c[\"num_attention_heads\"] = 3; c[\"num_key_value_heads\"] = 3" &&
	fails odd "hidden_size 64 is not divisible by num_attention_heads 3 (and there is no head_dim)" &&
	fresh lhd && edit lhd config.json "c[\"head_dim\"] = 32" &&
	run lhd && test "$(field lhd "[\"model_config\"][\"head_dim\"]")" = 32
'

test_expect_success 'a context window past max_position_embeddings warns unless rope scaling covers it' '
	run base --context-window-size 1024 &&
	test_grep "warning: context_window_size 1024 is larger than .*max_position_embeddings 256 and the model has no rope_scaling" err &&
	mkmodel --arch llama --rope-scaling llama3 --tokenizer "$ST" -o scaled >/dev/null &&
	run scaled --context-window-size 1024 &&
	! grep -q warning err &&
	test "$(field scaled "[\"context_window_size\"]")" = 1024
'

test_expect_success 'a prefill chunk larger than the context window is clamped, with a note' '
	run base --prefill-chunk-size 1000 &&
	test_grep "note\\|prefill_chunk_size 1000 is larger than context_window_size 256: clamped to 256" err &&
	test "$(field base "[\"prefill_chunk_size\"]")" = 256 &&
	test "$(field base "[\"model_config\"][\"prefill_chunk_size\"]")" = 256 &&
	run base -q --prefill-chunk-size 1000 && ! test -s err
'

test_expect_success 'duplicate added tokens in tokenizer.json' '
	fresh dup && edit dup tokenizer.json "c[\"added_tokens\"].append(dict(c[\"added_tokens\"][1], id=5))" &&
	fails dup "tokenizer.json: added_tokens: duplicate content .<s>. (ids 1 and 5)"
'

test_expect_success 'unsupported rope scaling, biases and pre-quantized checkpoints' '
	fresh yarn && edit yarn config.json "c[\"rope_scaling\"] = {\"rope_type\": \"yarn\", \"factor\": 4.0}" &&
	fails yarn "field .rope_scaling.: rope_type yarn is not supported for llama (only \"llama3\")" &&
	fresh bias && edit bias config.json "c[\"attention_bias\"] = True" &&
	fails bias "field .attention_bias. must be false for llama" &&
	fresh gelu && edit gelu config.json "c[\"hidden_act\"] = \"gelu\"" &&
	fails gelu "field .hidden_act. must be \"silu\" for llama" &&
	fresh gptq q3base && edit gptq config.json "c[\"quantization_config\"] = {\"quant_method\": \"gptq\", \"bits\": 4}" &&
	fails gptq "field .quantization_config.: only FP8"
'

test_expect_success 'old rope scaling without rope_type is dropped with a warning, as MLC does' '
	fresh linear && edit linear config.json "c[\"rope_scaling\"] = {\"type\": \"linear\", \"factor\": 2.0}" &&
	run linear &&
	test_grep "warning: .*rope_scaling has no rope_type (type .linear.): ignored" err &&
	test "$(field linear "[\"model_config\"][\"rope_scaling\"]")" = null
'

test_expect_success 'usage errors exit 2' '
	test_expect_code () { want=$1; shift; "$@"; test $? -eq $want; } &&
	test_expect_code 2 mlc-cfg --model base -o x --quantization q5f16 <empty 2>err &&
	test_grep "unknown scheme .q5f16. (one of q0f16, q0bf16" err &&
	test_expect_code 2 mlc-cfg --model base -o x <empty 2>err &&
	test_grep "quantization NAME is required" err &&
	test_expect_code 2 mlc-cfg --model base --quantization q4f16_1 <empty 2>err &&
	test_expect_code 2 mlc-cfg --model base --quantization q4f16_1 -o x --context-window-size 0 <empty 2>err &&
	test_grep "context_window_size: expected an integer from 1" err &&
	test_expect_code 2 mlc-cfg --model base --quantization q4f16_1 -o x --override nokey <empty 2>err &&
	! test -e x
'

test_expect_success 'an unknown template or a bad template file' '
	fails base "unknown conversation template .llama_default. (known: llama-2, llama-3" --conv-template llama_default &&
	echo "{\"roles\": {\"user\": \"U\"}, \"seps\": [\"\"]}" >bad.json &&
	fails base "bad.json: field .roles. needs an \"assistant\" entry" --conv-template ./bad.json &&
	fails base "missing.json: " --conv-template missing.json
'

test_expect_success 'overrides must name a field and fit its type' '
	fails base "override hidden: llama.s model_config has no field .hidden. (fields: hidden_size, intermediate_size" \
		--override hidden=3 &&
	fails base "override: rms_norm_eps: .tiny. is not a number" --override rms_norm_eps=tiny &&
	fails base "hidden_size is 0: must be at least 1" --override hidden_size=0 &&
	fails base "tensor_parallel_shards 3" --tensor-parallel-shards 3 &&
	fails base "pipeline_parallel_stages 3 is more than num_hidden_layers 2" --pipeline-parallel-stages 3
'

test_expect_success 'models with only tokenizer.model are accepted' '
	fresh sp && rm sp/tokenizer.json &&
	run sp &&
	test "$(field sp "[\"tokenizer_files\"]")" = "[\"tokenizer.model\", \"tokenizer_config.json\"]" &&
	test "$(field sp "[\"tokenizer_info\"]")" = \
		"{\"token_postproc_method\": \"byte_fallback\", \"prepend_space_in_encode\": false, \"strip_space_in_decode\": false}" &&
	test "$(field sp "[\"active_vocab_size\"]")" = 512 &&
	! test -e out-sp/tokenizer.json
'

test_expect_success 'models with only vocab.json and merges.txt are accepted' '
	fresh bpe && rm bpe/tokenizer.json bpe/tokenizer.model &&
	$PYTHON -c "
import json
json.dump({\"a\": 0, \"b\": 1, \"ab\": 2, \"<|endoftext|>\": 3}, open(\"bpe/vocab.json\", \"w\"))
json.dump({\"<|pad|>\": 4}, open(\"bpe/added_tokens.json\", \"w\"))
open(\"bpe/merges.txt\", \"w\").write(\"#version: 0.2\na b\n\")
" &&
	edit bpe generation_config.json "c[\"eos_token_id\"] = 3" &&
	run bpe &&
	test "$(field bpe "[\"tokenizer_files\"]")" = \
		"[\"vocab.json\", \"merges.txt\", \"added_tokens.json\", \"tokenizer_config.json\"]" &&
	test_cmp bpe/merges.txt out-bpe/merges.txt &&
	edit bpe generation_config.json "c[\"eos_token_id\"] = 5" &&
	fails bpe "id 5 is outside the vocabulary (ids 0 to 4: bpe/vocab.json)" &&
	rm bpe/merges.txt && fails bpe "vocab.json without merges.txt" &&
	rm bpe/vocab.json && fails bpe "no tokenizer (tokenizer.json, tokenizer.model, or vocab.json with merges.txt)"
'

test_expect_success 'a truncated tokenizer.model is refused' '
	fresh cut && rm cut/tokenizer.json &&
	head -c 1000 "$ST/tokenizer.model" >cut/tokenizer.model &&
	fails cut "tokenizer.model: not a SentencePiece model (truncated protobuf field at byte"
'

test_done
