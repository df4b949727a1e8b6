#!/bin/sh
# The pipeline from a GGUF gives what it gives from the HuggingFace
# directory the GGUF was made from: the same mlc-chat-config.json and, for
# float32 and float16 GGUFs, byte-identical tensor caches (llama.cpp's
# rotary permutation of q/k undone). Block-quantized GGUFs (Q8_0, Q4_0,
# Q4_K, Q6_K) give the caches of their values as an independent numpy
# dequantizer reads them, and mlc-quant says re-quantizing is lossy.
. "$(dirname "$0")/lib.sh"

GW="$PYTHON $SRC_DIR/tests/helpers/gguf_write.py"

# hf_copy SRC DST: the HuggingFace files a GGUF stands for (a GGUF holds
# no tokenizer.model, so the comparison leaves it out on both sides)
hf_copy () {
	mkdir "$2" && cp "$1"/*.json "$1"/*.safetensors "$2"/
}

# same_build SRC_A SRC_B SCHEME: both through mlc-fetch | mlc-cfg | mlc-quant
# give the same config and tensor cache
same_build () {
	mlc-fetch -q "$1" | mlc-cfg -q --quantization $3 -o out-a | mlc-quant -q >/dev/null &&
	mlc-fetch -q "$2" | mlc-cfg -q --quantization $3 -o out-b | mlc-quant -q >/dev/null &&
	test_cmp out-a/mlc-chat-config.json out-b/mlc-chat-config.json &&
	cmp out-a/tensor-cache.json out-b/tensor-cache.json &&
	for f in out-a/params_shard_*.bin; do cmp "$f" out-b/$(basename "$f") || return 1; done &&
	rm -rf out-a out-b
}

test_expect_success 'set up: stories260K and random llama, qwen2, qwen3 fixtures and their GGUFs' '
	hf_copy "$FIXTURES/stories260K" st &&
	$GW write "$FIXTURES/stories260K" st-f32.gguf --type f32 &&
	$GW write "$FIXTURES/stories260K" st-q8_0.gguf --type q8_0 &&
	mkmodel --arch llama --dtype f16 --hidden 256 --intermediate 512 --heads 4 --kv-heads 2 --layers 2 \
		--vocab 512 --tokenizer "$FIXTURES/stories260K" -o rl-full &&
	hf_copy rl-full rl &&
	for t in f16 f32 q8_0 q4_0 q4_k q6_k; do $GW write rl-full rl-$t.gguf --type $t || return 1; done &&
	mkmodel --arch qwen2 --dtype f16 --vocab 512 --tokenizer "$FIXTURES/stories260K" -o q2-full &&
	hf_copy q2-full q2 && $GW write q2-full q2-f16.gguf --type f16 &&
	mkmodel --arch qwen3 --dtype f32 --vocab 512 --tokenizer "$FIXTURES/stories260K" -o q3-full &&
	hf_copy q3-full q3 && $GW write q3-full q3-f32.gguf --type f32
'

for scheme in q4f16_1 q0f32 q0f16; do
	test_expect_success "stories260K F32 GGUF, $scheme: same config, byte-identical tensor cache" "
		same_build st st-f32.gguf $scheme
	"
done

test_expect_success 'random llama F16 GGUF (q/k permuted by the writer): identical q4f16_1 and q0f16' '
	same_build rl rl-f16.gguf q4f16_1 &&
	same_build rl rl-f16.gguf q0f16
'

test_expect_success 'random llama F32 GGUF of float16 values: identical q4f32_1' '
	same_build rl rl-f32.gguf q4f32_1
'

test_expect_success 'qwen2 F16 GGUF (biases, no permutation) and qwen3 F32 GGUF (q/k norms): identical' '
	same_build q2 q2-f16.gguf q4f16_1 &&
	same_build q3 q3-f32.gguf q4f16_1
'

test_expect_success 'Llama 3.1 rope scaling comes back from rope_freqs.weight; other factors are refused' '
	mkmodel --arch llama --rope-scaling llama3 --max-pos 32768 --tokenizer "$FIXTURES/stories260K" -o l3-full &&
	hf_copy l3-full l3 && $GW write l3-full l3.gguf --type f32 &&
	same_build l3 l3.gguf q4f16_1 &&
	mkmodel --arch llama --rope-scaling llama3 --max-pos 4096 --tokenizer "$FIXTURES/stories260K" -o l3b &&
	$GW write l3b l3b.gguf --type f32 &&
	test_must_fail mlc-cfg -q --model l3b.gguf --quantization q0f32 -o x </dev/null 2>err &&
	test_grep "l3b.gguf: tensor .rope_freqs.weight.: rotary factors that are not Llama 3.s scaling" err
'

test_expect_success 'Q8_0 GGUFs: the same mlc-chat-config.json as from the HuggingFace directory' '
	mlc-fetch -q st | mlc-cfg -q --quantization q4f16_1 -o cfg-hf >/dev/null &&
	mlc-fetch -q st-q8_0.gguf | mlc-cfg -q --quantization q4f16_1 -o cfg-g >/dev/null &&
	test_cmp cfg-hf/mlc-chat-config.json cfg-g/mlc-chat-config.json &&
	mlc-fetch -q rl | mlc-cfg -q --quantization q4f16_1 -o cfg-hf2 >/dev/null &&
	mlc-fetch -q rl-q8_0.gguf | mlc-cfg -q --quantization q4f16_1 -o cfg-g2 >/dev/null &&
	test_cmp cfg-hf2/mlc-chat-config.json cfg-g2/mlc-chat-config.json
'

for t in q8_0 q4_0 q4_k q6_k; do
	test_expect_success "$t GGUF: q0f32 cache holds the values numpy dequantizes; lossy warning" "
		$GW dequant rl-$t.gguf dq-$t && cp rl/*.json dq-$t/ &&
		mlc-fetch -q dq-$t | mlc-cfg -q --quantization q0f32 -o o-np | mlc-quant -q >/dev/null &&
		mlc-fetch -q rl-$t.gguf | mlc-cfg -q --quantization q0f32 -o o-g | mlc-quant >/dev/null 2>err &&
		cmp o-np/params_shard_0.bin o-g/params_shard_0.bin &&
		test_grep 'rl-$t.gguf: 16 tensors are stored as $(echo $t | tr a-z A-Z) (and similar): dequantized, then quantized again as q0f32, which loses accuracy; mlc-check --reference' err &&
		rm -rf o-np o-g
	"
done

test_expect_success 'the Q8_0 stories260K cache equals its numpy dequantization (F16 fallback rows too)' '
	$GW dequant st-q8_0.gguf dq-st && cp st/*.json dq-st/ &&
	mlc-fetch -q dq-st | mlc-cfg -q --quantization q0f32 -o o-np | mlc-quant -q >/dev/null &&
	mlc-fetch -q st-q8_0.gguf | mlc-cfg -q --quantization q0f32 -o o-g | mlc-quant -q >/dev/null 2>&1 &&
	cmp o-np/params_shard_0.bin o-g/params_shard_0.bin
'

test_expect_success 'mlc-cfg --model and mlc-quant --model take a .gguf file directly' '
	mlc-cfg -q --model rl-f16.gguf --quantization q4f16_1 -o direct >cfg.mp &&
	mlc-quant -q --model rl-f16.gguf <cfg.mp >/dev/null &&
	mlc-fetch -q rl | mlc-cfg -q --quantization q4f16_1 -o viahf | mlc-quant -q >/dev/null &&
	cmp direct/params_shard_0.bin viahf/params_shard_0.bin
'

test_expect_success 'a GGUF with a tensor llama.cpp would not write for that architecture is refused by name' '
	$PYTHON - <<-PY
	import sys
	sys.path.insert(0, "$SRC_DIR/tests/helpers")
	import gguf_write as g
	g.write_gguf("odd.gguf", [("general.architecture", g.STRING, "llama"), ("llama.attention.head_count", g.U32, 2)],
	             [("token_embd.weight", g.T_F32, [4, 8], b"\0" * 128), ("blk.0.attn_qkv.weight", g.T_F32, [4, 12], b"\0" * 192)])
	PY
	test_must_fail mlc-quant -q --model odd.gguf --config cfg-hf/mlc-chat-config.json 2>err &&
	test_grep "odd.gguf: tensor .blk.0.attn_qkv.weight.: not a tensor of llama.cpp.s llama models that has a HuggingFace name" err
'

test_expect_success 'mlc-cfg on a GGUF without a key config.json needs names the file and the key' '
	$PYTHON - <<-PY
	import sys
	sys.path.insert(0, "$SRC_DIR/tests/helpers")
	import gguf_write as g
	g.write_gguf("nokey.gguf", [("general.architecture", g.STRING, "llama"), ("llama.attention.head_count", g.U32, 2)],
	             [("token_embd.weight", g.T_F32, [4, 8], b"\0" * 128)])
	PY
	test_must_fail mlc-cfg -q --model nokey.gguf --quantization q0f32 -o nk </dev/null 2>err &&
	test_line_count = 1 err &&
	test_grep "nokey.gguf: metadata .llama.embedding_length.: missing" err &&
	! test -e nk/mlc-chat-config.json
'

test_done
