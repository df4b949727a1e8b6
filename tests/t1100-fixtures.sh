#!/bin/sh
# The synthetic-model generator: deterministic, and readable by independent
# readers (Python's own safetensors parsing, torch.load).
. "$(dirname "$0")/lib.sh"

TOK="$FIXTURES/stories260K"

test_expect_success 'the same arguments give byte-identical directories' '
	for a in llama mistral qwen2 qwen3; do
		mkmodel --arch $a --dtype bf16 --tokenizer "$TOK" -o one/$a &&
		mkmodel --arch $a --dtype bf16 --tokenizer "$TOK" -o two/$a || return 1
	done &&
	diff -r one two
'

test_expect_success 'a different seed gives different weights' '
	mkmodel --arch llama --seed 2 -o seed2 &&
	mkmodel --arch llama --seed 3 -o seed3 &&
	! cmp -s seed2/model.safetensors seed3/model.safetensors
'

test_expect_success 'sharded and single-file models hold the same tensors' '
	mkmodel --arch qwen2 --dtype f16 -o single &&
	mkmodel --arch qwen2 --dtype f16 --shards 3 -o sharded &&
	test -f sharded/model-00003-of-00003.safetensors &&
	$PYTHON - <<-PY
	import json, struct
	def load(path):
	    f = open(path, "rb"); n = struct.unpack("<Q", f.read(8))[0]
	    h = json.loads(f.read(n)); data = f.read()
	    assert (8 + n) % 8 == 0, "header not padded to 8"
	    out = {}
	    end_prev = 0
	    for k, v in h.items():
	        if k == "__metadata__": continue
	        s, e = v["data_offsets"]; assert s == end_prev; end_prev = e
	        out[k] = (v["dtype"], v["shape"], data[s:e])
	    assert end_prev == len(data)
	    return out
	one = load("single/model.safetensors")
	idx = json.load(open("sharded/model.safetensors.index.json"))
	many = {}
	for f in sorted(set(idx["weight_map"].values())):
	    many.update(load("sharded/" + f))
	assert one == many, "tensors differ"
	assert set(idx["weight_map"]) == set(one)
	assert idx["metadata"]["total_size"] == sum(len(v[2]) for v in one.values())
	assert "model.layers.0.self_attn.q_proj.bias" in one
	assert "lm_head.weight" not in one  # qwen2 fixture ties embeddings
	PY
'

test_expect_success 'each architecture has its own tensors and config fields' '
	$PYTHON - <<-PY
	import json, struct
	def names(d):
	    f = open(d + "/model.safetensors", "rb"); n = struct.unpack("<Q", f.read(8))[0]
	    return json.loads(f.read(n))
	q3 = names("one/qwen3"); c3 = json.load(open("one/qwen3/config.json"))
	assert q3["model.layers.1.self_attn.q_norm.weight"]["shape"] == [48]
	assert q3["model.layers.0.self_attn.q_proj.weight"]["shape"] == [4 * 48, 128]
	assert c3["head_dim"] == 48 and c3["tie_word_embeddings"] is True
	m = names("one/mistral"); cm = json.load(open("one/mistral/config.json"))
	assert "lm_head.weight" in m and cm["sliding_window"] == 32
	l = names("one/llama")
	assert l["model.layers.0.self_attn.k_proj.weight"]["shape"] == [32, 64]
	assert l["model.embed_tokens.weight"]["dtype"] == "BF16"
	PY
'

test_expect_success 'PyTorch checkpoints carry the same values' '
	mkmodel --arch llama --dtype bf16 -o tb &&
	$PYTHON "$SRC_DIR/tests/helpers/st2bin.py" tb &&
	$PYTHON "$SRC_DIR/tests/helpers/st2bin.py" tb --shards 2 &&
	$PYTHON - <<-PY
	import json, struct, torch
	f = open("tb/model.safetensors", "rb"); n = struct.unpack("<Q", f.read(8))[0]
	h = json.loads(f.read(n)); data = f.read()
	sd = torch.load("tb/pytorch_model.bin")
	idx = json.load(open("tb/pytorch_model.bin.index.json"))
	parts = {}
	for fn in set(idx["weight_map"].values()):
	    parts.update(torch.load("tb/" + fn))
	for k, v in h.items():
	    if k == "__metadata__": continue
	    s, e = v["data_offsets"]
	    assert sd[k].dtype == torch.bfloat16
	    assert sd[k].contiguous().view(torch.int16).numpy().tobytes() == data[s:e], k
	    assert torch.equal(parts[k].view(torch.int16), sd[k].view(torch.int16)), k
	PY
'

test_expect_success 'llama3 rope scaling and inv_freq tensors on request' '
	mkmodel --arch llama --rope-scaling llama3 --inv-freq -o l3 &&
	test_grep "\"rope_type\": \"llama3\"" l3/config.json &&
	$PYTHON -c "
import json, struct
f = open(\"l3/model.safetensors\", \"rb\"); n = struct.unpack(\"<Q\", f.read(8))[0]
h = json.loads(f.read(n))
assert h[\"model.layers.0.self_attn.rotary_emb.inv_freq\"][\"dtype\"] == \"F32\"
"
'

test_done
