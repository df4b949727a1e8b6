#!/usr/bin/python3
"""Checks of the Gemma 2, Gemma 3 and Phi-3 reference forward passes
(gemma_phi3.py) against properties computed by hand and against the
llama reference, before any engine is compared with them.

    check_gemma_phi3.py GEMMA2_DIR GEMMA3_DIR PHI3_DIR WORK_DIR

The directories are mkmodel fixtures; WORK_DIR receives rewritten copies.
Prints one line per check; exits non-zero on the first failure.
"""
import copy
import json
import math
import os
import random
import struct
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_forward  # noqa: E402
from gemma_phi3 import ARCHITECTURES  # noqa: E402


def load(d):
    return json.load(open(os.path.join(d, "config.json"))), hf_forward.load_weights(d)


def run(c, W, ids):
    with torch.no_grad():
        return ARCHITECTURES[c["model_type"]](c, W, ids)


def with_config(c, **changes):
    c = copy.deepcopy(c)
    for k, v in changes.items():
        if v is None and k.startswith("del_"):
            c.pop(k[4:], None)
        else:
            c[k] = v
    return c


def ids(n, seed):
    r = random.Random(seed)
    return [r.randrange(3, 512) for _ in range(n)]


def differ(a, b):
    return float((a - b).abs().max())


def ok(name, cond, detail=""):
    print("%s: %s%s" % ("ok" if cond else "FAILED", name, (" (" + detail + ")") if detail else ""))
    if not cond:
        sys.exit(1)


def write_safetensors(path, tensors):
    head, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].contiguous().float()
        raw = a.numpy().tobytes()
        head[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def gemma2_checks(d):
    c, W = load(d)
    seq = ids(40, 1)
    base = run(c, W, seq)
    cap = c["final_logit_softcapping"]
    raw = run(with_config(c, final_logit_softcapping=None), W, seq)
    ok("gemma2: final logits are cap * tanh(raw / cap)", differ(base, cap * torch.tanh(raw / cap)) < 1e-5,
       "cap %g, raw logits up to %.2f" % (cap, float(raw.abs().max())))
    no_attn_cap = run(with_config(c, attn_logit_softcapping=None), W, seq)
    huge_cap = run(with_config(c, attn_logit_softcapping=1e6), W, seq)
    ok("gemma2: an attention cap of 1e6 is no cap", differ(no_attn_cap, huge_cap) < 1e-4)
    ok("gemma2: the attention cap of %g changes the logits" % c["attn_logit_softcapping"],
       differ(no_attn_cap, base) > 1e-3)
    # receptive field: W - 1 positions back per sliding layer
    window, layers = c["sliding_window"], c["num_hidden_layers"]
    reach = layers * (window - 1)
    changed = [seq[0] + 1] + seq[1:]
    all_sliding = with_config(c, layer_types=["sliding_attention"] * layers)
    a, b = run(all_sliding, W, seq), run(all_sliding, W, changed)
    ok("gemma2: with only sliding layers token 0 cannot reach position %d" % (reach + 1),
       differ(a[reach + 1:], b[reach + 1:]) == 0.0 and differ(a[reach], b[reach]) > 0)
    a2 = run(c, W, changed)
    ok("gemma2: the alternating full layers let token 0 reach the last position", differ(base[-1], a2[-1]) > 1e-6)
    first = run(c, W, seq[:reach])
    ok("gemma2: causal (a prefix's logits do not see what follows)", differ(first, base[:reach]) < 1e-5)
    types = [t[0] for t in hf_forward_types(c)]
    ok("gemma2: layers alternate sliding, full, ...", types == ["s", "f"] * (layers // 2), "".join(types))


def hf_forward_types(c):
    from gemma_phi3 import layer_types
    return layer_types(c, c["model_type"] != "gemma2")


def gemma3_checks(d, work):
    c, W = load(d)
    seq = ids(30, 2)
    base = run(c, W, seq)
    types = "".join(t[0] for t in hf_forward_types(c))
    ok("gemma3: one layer in %d is full (the last of each group)" % c["sliding_window_pattern"], types == "ssfssf", types)
    local = run(with_config(c, rope_local_base_freq=777.0), W, seq)
    ok("gemma3: the local base turns the sliding layers", differ(base, local) > 1e-4)
    all_full = with_config(c, sliding_window_pattern=1)
    a, b = run(all_full, W, seq), run(with_config(all_full, rope_local_base_freq=777.0), W, seq)
    ok("gemma3: with only full layers the local base does nothing", differ(a, b) == 0.0)
    scaled = run(with_config(c, rope_scaling={"rope_type": "linear", "factor": 2.0}), W, seq)
    ok("gemma3: the linear factor turns the full layers", differ(base, scaled) > 1e-4)
    only_sliding = with_config(c, layer_types=["sliding_attention"] * c["num_hidden_layers"])
    a = run(only_sliding, W, seq)
    b = run(with_config(only_sliding, rope_scaling={"rope_type": "linear", "factor": 2.0}), W, seq)
    ok("gemma3: with only sliding layers the global rope scaling does nothing", differ(a, b) == 0.0)
    zero = dict(W)
    for k in list(zero):
        if k.endswith("q_norm.weight") or k.endswith("k_norm.weight"):
            zero[k] = torch.full_like(zero[k], 1.0)
    doubled = run(c, zero, seq)
    for k in list(zero):
        if k.endswith("q_norm.weight"):
            zero[k] = torch.full_like(zero[k], 3.0)
    ok("gemma3: q is normalised then scaled by 1 + w (w = 1 vs 3: different attention)",
       differ(doubled, run(c, zero, seq)) > 1e-4)
    # the multimodal layout: weights under language_model., the config nested
    mm = os.path.join(work, "gemma3-multimodal")
    os.makedirs(mm, exist_ok=True)
    write_safetensors(os.path.join(mm, "model.safetensors"), {"language_model." + k: v for k, v in W.items()})
    text = {k: v for k, v in c.items() if k != "vocab_size"}
    json.dump({"model_type": "gemma3", "text_config": text, "vocab_size": c["vocab_size"]},
              open(os.path.join(mm, "config.json"), "w"))
    out = os.path.join(work, "mm.bin")
    subprocess.check_call([sys.executable, hf_forward.__file__, mm, ",".join(map(str, seq)), out])
    got = torch.frombuffer(bytearray(open(out, "rb").read()), dtype=torch.float32).view(len(seq), -1)
    ok("gemma3: a multimodal checkpoint's language model gives the same logits", differ(got, base) < 1e-5)


def phi3_checks(d, work):
    c, W = load(d)
    orig = c["original_max_position_embeddings"]
    # Phi-3 without rope scaling is Llama with fused projections: split them
    # and ask the llama reference
    H, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = H // nh
    llama = {}
    for k, v in W.items():
        if k.endswith("qkv_proj.weight"):
            p = k[:-len("qkv_proj.weight")]
            llama[p + "q_proj.weight"] = v[:nh * hd]
            llama[p + "k_proj.weight"] = v[nh * hd:(nh + nkv) * hd]
            llama[p + "v_proj.weight"] = v[(nh + nkv) * hd:]
        elif k.endswith("gate_up_proj.weight"):
            p = k[:-len("gate_up_proj.weight")]
            half = v.shape[0] // 2
            llama[p + "gate_proj.weight"], llama[p + "up_proj.weight"] = v[:half], v[half:]
        else:
            llama[k] = v
    ld = os.path.join(work, "phi3-as-llama")
    os.makedirs(ld, exist_ok=True)
    write_safetensors(os.path.join(ld, "model.safetensors"), llama)
    lc = {k: c[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
                            "num_hidden_layers", "rms_norm_eps", "rope_theta", "vocab_size")}
    lc.update(model_type="llama", tie_word_embeddings=False)
    json.dump(lc, open(os.path.join(ld, "config.json"), "w"))
    seq = ids(40, 3)
    out = os.path.join(work, "llama.bin")
    subprocess.check_call([sys.executable, hf_forward.__file__, ld, ",".join(map(str, seq)), out])
    want = torch.frombuffer(bytearray(open(out, "rb").read()), dtype=torch.float32).view(len(seq), -1)
    plain = with_config(c, rope_scaling=None, sliding_window=None)
    ok("phi3 without rope scaling equals the llama reference on the split weights",
       differ(run(plain, W, seq), want) < 1e-5)
    rs = c["rope_scaling"]
    short = seq[:orig]
    a = run(c, W, short)
    b = run(with_config(c, rope_scaling=dict(rs, long_factor=[99.0] * len(rs["long_factor"]))), W, short)
    ok("phi3: %d tokens (the original context) use only the short factors" % orig, differ(a, b) == 0.0)
    longer = seq[:orig + 1]
    a = run(c, W, longer)
    b = run(with_config(c, rope_scaling=dict(rs, long_factor=[99.0] * len(rs["long_factor"]))), W, longer)
    ok("phi3: %d tokens use the long factors" % (orig + 1), differ(a, b) > 1e-4)
    ok("phi3: past the original context every position switches to the long factors",
       differ(run(c, W, short), a[:orig]) > 1e-4)
    ones = dict(rs, short_factor=[1.0] * len(rs["short_factor"]), attention_factor=1.0)
    ok("phi3: short factors of 1 with attention_factor 1 are plain rope",
       differ(run(with_config(c, rope_scaling=ones, sliding_window=None), W, short), want[:orig]) < 1e-5)
    mscale = math.sqrt(1 + math.log(c["max_position_embeddings"] / orig) / math.log(orig))
    unit = dict(rs, short_factor=[1.0] * len(rs["short_factor"]))
    explicit = dict(unit, attention_factor=mscale)
    ok("phi3: the default attention factor is sqrt(1 + ln(%d / %d) / ln(%d)) = %.6f" % (
        c["max_position_embeddings"], orig, orig, mscale),
        differ(run(with_config(c, rope_scaling=unit), W, short),
               run(with_config(c, rope_scaling=explicit), W, short)) < 1e-6 and
        differ(run(with_config(c, rope_scaling=unit), W, short), want[:orig]) > 1e-4)


def main():
    g2, g3, p3, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    gemma2_checks(g2)
    gemma3_checks(g3, work)
    phi3_checks(p3, work)


if __name__ == "__main__":
    main()
