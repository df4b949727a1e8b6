#!/bin/sh
# mlc-quant for Gemma 2, Gemma 3 and Phi-3 against the independent numpy
# model of MLC's convert_weight (tests/helpers/mlc_convert_ref.py), byte for
# byte: fused and separate projections under MLC's names, Gemma's norms
# stored as 1 + w (the sum rounded to the checkpoint's dtype first), and a
# multimodal Gemma 3 checkpoint whose language model is under language_model.
. "$(dirname "$0")/lib.sh"

REF="$SRC_DIR/tests/helpers/mlc_convert_ref.py"
: >empty

# same MODEL SCHEME: mlc-cfg's config, then mlc-quant and the model agree
same () {
	rm -rf out ref &&
	mlc-fetch -q "$1" | mlc-cfg -q --quantization $2 -o out >cfg.mp 2>/dev/null &&
	mlc-quant -q <cfg.mp >/dev/null 2>quant.err &&
	$PYTHON "$REF" "$1" out/mlc-chat-config.json ref &&
	for f in ref/*; do cmp "$f" out/$(basename "$f") || return 1; done
}

for a in gemma2 gemma3_text phi3; do
	test_expect_success "$a: q4f16_1 and q0f16 from bf16, q4f32_1 from f32 match byte for byte" "
		mkmodel --arch $a --dtype bf16 --tokenizer \"$FIXTURES/stories260K\" -o $a-bf16 &&
		mkmodel --arch $a --dtype f32 --tokenizer \"$FIXTURES/stories260K\" -o $a-f32 &&
		same $a-bf16 q4f16_1 && same $a-bf16 q0f16 && same $a-f32 q4f32_1
	"
done

test_expect_success 'the MLC parameter names and the 1 + w norms are where MLC puts them' '
	mlc-fetch -q gemma2-f32 | mlc-cfg -q --quantization q0f32 -o g2 | mlc-quant -q >/dev/null &&
	$PYTHON - <<-PY
	import json, struct
	import numpy as np
	cache = json.load(open("g2/tensor-cache.json"))
	recs = {r["name"]: r for s in cache["records"] for r in s["records"]}
	assert "model.layers.0.self_attn.qkv_proj.weight" in recs and "model.layers.3.post_feedforward_layernorm.weight" in recs
	assert "lm_head.weight" not in recs
	raw = open("gemma2-f32/model.safetensors", "rb").read()
	n = struct.unpack("<Q", raw[:8])[0]
	h = json.loads(raw[8:8 + n])
	b, e = h["model.norm.weight"]["data_offsets"]
	w = np.frombuffer(raw[8 + n + b:8 + n + e], np.float32)
	r = recs["model.norm.weight"]
	data = open("g2/" + "params_shard_0.bin", "rb").read()[r["byteOffset"]:r["byteOffset"] + r["nbytes"]]
	got = (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32)   # q0f32 stores bf16 bits
	want = ((w + 1).view(np.uint32) + 0x7FFF + (((w + 1).view(np.uint32) >> 16) & 1)) >> 16 << 16
	assert np.array_equal(got, want.astype(np.uint32).view(np.float32)), (got[:4], w[:4] + 1)
	PY
'

test_expect_success 'gemma3 multimodal checkpoint: language_model. weights, the vision tower unused' '
	$PYTHON - gemma3_text-f32 mm <<-PY
	import json, os, shutil, struct, sys
	src, dst = sys.argv[1:3]
	os.makedirs(dst)
	raw = open(src + "/model.safetensors", "rb").read()
	n = struct.unpack("<Q", raw[:8])[0]
	h = json.loads(raw[8:8 + n]); data = raw[8 + n:]
	h.pop("__metadata__", None)
	out, blobs, off = {}, [], 0
	for name in sorted(h):
	    b, e = h[name]["data_offsets"]
	    out["language_model." + name] = dict(h[name], data_offsets=[off, off + e - b]); blobs.append(data[b:e]); off += e - b
	out["vision_tower.vision_model.post_layernorm.weight"] = {"dtype": "F32", "shape": [4], "data_offsets": [off, off + 16]}
	blobs.append(b"\0" * 16)
	hdr = json.dumps(out).encode(); hdr += b" " * (-len(hdr) % 8)
	open(dst + "/model.safetensors", "wb").write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))
	c = json.load(open(src + "/config.json"))
	text = {k: v for k, v in c.items() if k not in ("architectures", "vocab_size")}
	json.dump({"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text,
	           "vocab_size": c["vocab_size"], "vision_config": {"model_type": "siglip_vision_model"}},
	          open(dst + "/config.json", "w"), indent=2)
	for f in ("tokenizer.json", "tokenizer_config.json"):
	    shutil.copy(src + "/" + f, dst)
	PY
	same mm q4f16_1 &&
	test_grep "1 source tensor is not used by any MLC parameter" quant.err
'

test_expect_success 'mlc-lower refuses the three architectures by name, from a record or a file' '
	for a in gemma2 gemma3_text phi3; do
		mlc-fetch -q $a-f32 | mlc-cfg -q --quantization q4f16_1 -o low-$a 2>/dev/null | mlc-quant -q >low-$a.mp &&
		test_must_fail mlc-lower -q <low-$a.mp >lowered 2>err &&
		test_must_be_empty lowered &&
		test_grep "config record: model_type .$a.: mlc-lower cannot build this architecture.s graph yet" err &&
		test_must_fail mlc-lower -q --config low-$a/mlc-chat-config.json </dev/null 2>err &&
		test_grep "low-$a/mlc-chat-config.json: model_type .$a.: mlc-lower cannot build" err || return 1
	done
'

test_done
