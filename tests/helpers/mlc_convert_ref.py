#!/usr/bin/python3
"""An independent model of MLC-LLM's convert_weight, in numpy, for tests.

    mlc_convert_ref.py MODEL_DIR CONFIG_JSON OUT_DIR [--source-format safetensors|torch]

Writes params_shard_*.bin, tensor-cache.json (and tensor-cache-b16.json) as
MLC-LLM's CPU path would, written from the published descriptions of the
formats (MLC's loader order, group quantization with float16 arithmetic,
tvmjs shard packing, json.dump(indent=4), md5) without looking at mlc-pipe's
C code, so that tests can compare the two byte for byte. Needs Debian's
python3-numpy and python3-torch (torch for bfloat16 and .bin files).
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np

CAP = 32 << 20

SCHEMES = {
    # name: (kind, model dtype, bits, group, layout, quantize embedding, quantize lm_head)
    "q0f16": ("none", "float16"), "q0bf16": ("none", "bfloat16"), "q0f32": ("none", "float32"),
    "q3f16_0": ("group", "float16", 3, 40, "KN", True, True),
    "q3f16_1": ("group", "float16", 3, 40, "NK", True, True),
    "q4f16_0": ("group", "float16", 4, 32, "KN", True, True),
    "q4f16_1": ("group", "float16", 4, 32, "NK", True, True),
    "q4bf16_0": ("group", "bfloat16", 4, 32, "KN", True, True),
    "q4bf16_1": ("group", "bfloat16", 4, 32, "NK", True, True),
    "q4f32_1": ("group", "float32", 4, 32, "NK", True, True),
    "q4f16_2": ("group", "float16", 4, 32, "NK", False, False),
    "e4m3_e4m3_f16": ("fp8", "float16", "e4m3", True, True),
    "e5m2_e5m2_f16": ("fp8", "float16", "e5m2", False, False),
}

# ---------------------------------------------------------------- dtypes
# Arrays are kept as float32 values plus the name of the dtype they are
# exactly representable in; bfloat16 goes through torch.


def to_bf16_bits(x32):
    import torch
    t = torch.from_numpy(np.ascontiguousarray(x32, dtype=np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().view(np.uint16)


def from_bf16_bits(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def cast(x32, src, dtype):
    """numpy/ml_dtypes astype: returns float32 values representable in dtype."""
    if src == dtype:
        return x32
    if dtype == "float16":
        return x32.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        return from_bf16_bits(to_bf16_bits(x32))
    return x32


def tvmjs_f32_to_bf16(x32):
    data = x32.view(np.uint32)
    limit = np.array([0x7F7F0000], dtype=np.uint32).view(np.float32)[0]
    bias = np.where((x32 < limit) & (x32 > -limit), ((data >> 16) & 1) + 0x7FFF, 0).astype(np.uint32)
    return ((data + bias) >> 16).astype(np.uint16)


def encode(x32, dtype):
    if dtype == "float16":
        return x32.astype(np.float16).tobytes()
    if dtype == "bfloat16":
        return to_bf16_bits(x32).tobytes()
    if dtype == "float32":
        return tvmjs_f32_to_bf16(x32.astype(np.float32)).tobytes()
    return x32.tobytes()


# ---------------------------------------------------------------- reading


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        raw = np.frombuffer(data[s:e], dtype=np.uint8)
        dt = info["dtype"]
        if dt == "F32":
            v, src = raw.view(np.float32), "float32"
        elif dt == "F16":
            v, src = raw.view(np.float16).astype(np.float32), "float16"
        else:
            v, src = from_bf16_bits(raw.view(np.uint16)), "bfloat16"
        out[name] = (v.reshape(info["shape"]), src)
    return out


def read_torch(path):
    import torch
    sd = torch.load(path, map_location="cpu")
    out = {}
    for name, t in sd.items():
        src = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[t.dtype]
        out[name] = (t.float().numpy(), src)
    return out


def source_files(model, fmt):
    """[(path, [names in loader order])] and the index order of names."""
    index = os.path.join(model, "model.safetensors.index.json" if fmt == "safetensors"
                         else "pytorch_model.bin.index.json")
    reader = read_safetensors if fmt == "safetensors" else read_torch
    if os.path.exists(index):
        wm = json.load(open(index))["weight_map"]
        return [(os.path.join(model, f), n) for n, f in wm.items()], reader, True
    single = os.path.join(model, "model.safetensors" if fmt == "safetensors" else "pytorch_model.bin")
    names = list(reader(single).keys())
    if fmt == "safetensors":
        names.sort()  # safe_open().keys() is sorted
    return [(single, n) for n in names], reader, False


# ---------------------------------------------------------------- mapping


ADD_ONE = set()  # MLC names stored as 1 + w (Gemma's norms)


def gemma_params(cfg):
    """Gemma 2: fused qkv and gate_up; Gemma 3: q/k/v apart, q/k norms, all
    under language_model. (multimodal checkpoints: the same in the source).
    Every norm is stored as 1 + w; the embedding is tied."""
    mt, mc = cfg["model_type"], cfg["model_config"]
    g3 = mt != "gemma2"
    tc = mc["text_config"] if g3 else mc
    pre = "language_model." if g3 else ""
    src = "language_model." if g3 and not mc.get("is_text_model", True) else ""
    out = [(pre + "model.embed_tokens.weight", [src + "model.embed_tokens.weight"], "embed")]

    def norm(name, hf):
        out.append((name, [hf], "other"))
        ADD_ONE.add(name)
    for i in range(tc["num_hidden_layers"]):
        L, S = "%smodel.layers.%d" % (pre, i), "%smodel.layers.%d" % (src, i)
        if g3:
            for p in ("q_proj", "k_proj", "v_proj"):
                out.append(("%s.self_attn.%s.weight" % (L, p), ["%s.self_attn.%s.weight" % (S, p)], "linear"))
        else:
            out.append((L + ".self_attn.qkv_proj.weight",
                        [S + ".self_attn.%s.weight" % p for p in ("q_proj", "k_proj", "v_proj")], "linear"))
        out.append((L + ".self_attn.o_proj.weight", [S + ".self_attn.o_proj.weight"], "linear"))
        if g3:
            norm(L + ".self_attn.q_norm.weight", S + ".self_attn.q_norm.weight")
            norm(L + ".self_attn.k_norm.weight", S + ".self_attn.k_norm.weight")
        out.append((L + ".mlp.gate_up_proj.weight", [S + ".mlp.gate_proj.weight", S + ".mlp.up_proj.weight"], "linear"))
        out.append((L + ".mlp.down_proj.weight", [S + ".mlp.down_proj.weight"], "linear"))
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            norm("%s.%s.weight" % (L, n), "%s.%s.weight" % (S, n))
    norm(pre + "model.norm.weight", src + "model.norm.weight")
    return out, set()


def phi3_params(cfg):
    """Phi-3: MLC's own names for the checkpoint's already fused tensors."""
    mc = cfg["model_config"]
    out = [("transformer.embd.weight", ["model.embed_tokens.weight"], "embed")]
    for i in range(mc["num_hidden_layers"]):
        for mlc, hf, kind in (("ln.weight", "input_layernorm.weight", "other"),
                              ("mixer.qkv_proj.weight", "self_attn.qkv_proj.weight", "linear"),
                              ("mixer.out_proj.weight", "self_attn.o_proj.weight", "linear"),
                              ("mlp.gate_up_proj.weight", "mlp.gate_up_proj.weight", "linear"),
                              ("mlp.down_proj.weight", "mlp.down_proj.weight", "linear"),
                              ("post_attention_layernorm.weight", "post_attention_layernorm.weight", "other")):
            out.append(("transformer.h.%d.%s" % (i, mlc), ["model.layers.%d.%s" % (i, hf)], kind))
    out.append(("transformer.norm.weight", ["model.norm.weight"], "other"))
    if not mc.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", ["lm_head.weight"], "lm_head"))
    return out, set()


def mlc_params(cfg):
    mt = cfg["model_type"]
    if mt in ("gemma2", "gemma3", "gemma3_text"):
        return gemma_params(cfg)
    if mt == "phi3":
        return phi3_params(cfg)
    mc = cfg["model_config"]
    out = []  # (mlc name, [sources], kind)
    out.append(("model.embed_tokens.weight", ["model.embed_tokens.weight"], "embed"))
    unused = set()
    for i in range(mc["num_hidden_layers"]):
        a = "model.layers.%d.self_attn" % i
        m = "model.layers.%d.mlp" % i
        fused = "c_attn" if mt in ("qwen2", "qwen3") else "qkv_proj"
        out.append(("%s.%s.weight" % (a, fused), [a + ".q_proj.weight", a + ".k_proj.weight", a + ".v_proj.weight"], "linear"))
        if mt == "qwen2" or (mt == "qwen3" and mc.get("attention_bias")):
            out.append(("%s.%s.bias" % (a, fused), [a + ".q_proj.bias", a + ".k_proj.bias", a + ".v_proj.bias"], "other"))
        out.append((a + ".o_proj.weight", [a + ".o_proj.weight"], "linear"))
        if mt == "qwen3":
            out.append((a + ".q_norm.weight", [a + ".q_norm.weight"], "other"))
            out.append((a + ".k_norm.weight", [a + ".k_norm.weight"], "other"))
        out.append((m + ".gate_up_proj.weight", [m + ".gate_proj.weight", m + ".up_proj.weight"], "linear"))
        out.append((m + ".down_proj.weight", [m + ".down_proj.weight"], "linear"))
        for n in ("input_layernorm", "post_attention_layernorm"):
            nm = "model.layers.%d.%s.weight" % (i, n)
            out.append((nm, [nm], "other"))
        if mt in ("llama", "mistral"):
            unused.add(a + ".rotary_emb.inv_freq")
    out.append(("model.norm.weight", ["model.norm.weight"], "other"))
    if mt == "mistral" or not mc.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", ["lm_head.weight"], "lm_head"))
    return out, unused


# ---------------------------------------------------------------- quantization


def tvm_max(a, b):
    return np.where(a > b, a, b)


def tvm_min(a, b):
    return np.where(a < b, a, b)


def lowest(dtype):
    return {"float16": np.float32(-65504.0), "float32": np.float32(-3.4028234663852886e38),
            "bfloat16": from_bf16_bits(np.array([0xFF7F], np.uint16))[0]}[dtype]


def group_quant(w, dtype, bits, gs):
    """w: float32 [N, K] representable in dtype. Returns (words uint32 [N, G*wpg], scale float32 [N, G])."""
    n, k = w.shape
    epw = 32 // bits
    max_int = np.float32(2 ** (bits - 1) - 1)
    g = (k + gs - 1) // gs
    pad = np.full((n, g * gs), np.nan, np.float32)
    pad[:, :k] = w
    grouped = pad.reshape(n, g, gs)
    acc = np.full((n, g), lowest(dtype), np.float32)
    with np.errstate(all="ignore"):
        for r in range(gs):
            valid = np.arange(g) * gs + r < k
            v = np.where(valid[None, :], np.abs(grouped[:, :, r]), lowest(dtype))
            acc = tvm_max(acc, v)
        if dtype == "float16":
            scale = (acc.astype(np.float16) / np.float16(max_int)).astype(np.float32)
            t = (w.astype(np.float16) / np.repeat(scale, gs, axis=1)[:, :k].astype(np.float16))
            u = (t + np.float16(max_int)).astype(np.float32)
        else:
            scale = acc / max_int
            if dtype == "bfloat16":  # TVM: f32 compute, RNE bits when stored
                b = scale.view(np.uint32)
                scale = ((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
            t = w / np.repeat(scale, gs, axis=1)[:, :k]
            u = (t + max_int).astype(np.float32)
        r = np.rint(u)
        q = tvm_min(tvm_max(r, np.float32(0)), np.float32(2 * max_int)).astype(np.uint32)
    padded = np.zeros((n, g * gs), np.uint32)
    padded[:, :k] = q
    shifts = (np.arange(epw, dtype=np.uint32) * np.uint32(bits))[None, None, :]
    words = np.bitwise_or.reduce(padded.reshape(n, -1, epw) << shifts, axis=2).astype(np.uint32)
    return words, scale


def fp8_table(kind):
    """All finite non-negative values of the format with their codes."""
    vals = []
    man, bias = (3, 7) if kind == "e4m3" else (2, 15)
    for code in range(128):
        e, m = code >> man, code & ((1 << man) - 1)
        if kind == "e4m3" and code == 0x7F:
            continue
        if kind == "e5m2" and e == 31:
            continue
        v = (m / (1 << man)) * 2.0 ** (1 - bias) if e == 0 else (1 + m / (1 << man)) * 2.0 ** (e - bias)
        vals.append((v, code))
    return vals


def fp8_encode(x32, kind):
    """Nearest value, ties to the even code, saturating; NaN → all ones."""
    table = fp8_table(kind)
    values = np.array([v for v, _ in table], np.float64)
    codes = np.array([c for _, c in table], np.uint8)
    flat = x32.reshape(-1).astype(np.float64)
    sign = np.where(np.signbit(flat), 0x80, 0).astype(np.uint8)
    a = np.minimum(np.abs(np.nan_to_num(flat, nan=0.0)), values[-1])
    hi = np.clip(np.searchsorted(values, a), 0, len(values) - 1)
    lo = np.clip(hi - 1, 0, len(values) - 1)
    dl, dh = a - values[lo], values[hi] - a
    exact = values[hi] == a
    pick_lo = (dl < dh) | ((dl == dh) & (codes[lo] % 2 == 0))
    c = np.where(exact, codes[hi], np.where(pick_lo, codes[lo], codes[hi]))
    nan_code = 0x7F if kind == "e4m3" else 0x7E
    c = np.where(np.isnan(flat), nan_code, c).astype(np.uint8)
    return (sign | c).reshape(x32.shape)


def fp8_quant(w, kind, use_scale):
    fmax = 448.0 if kind == "e4m3" else 57344.0
    scale = None
    if use_scale:
        # acc = acc > v ? acc : v from the lowest float16, in order: a NaN
        # resets it, so only what follows the last NaN counts
        v = np.abs(w.reshape(-1))
        nans = np.flatnonzero(np.isnan(v))
        if len(nans) and nans[-1] == len(v) - 1:
            acc = np.float32(np.nan)
        else:
            tail = v[nans[-1] + 1:] if len(nans) else v
            acc = max(np.float32(-65504.0), tail.max())
        with np.errstate(all="ignore"):
            s = np.float16(acc) / np.float16(fmax)
        floor = np.float16(1.0 / (fmax * 512.0))
        scale = np.float32(s if s > floor else floor)
        with np.errstate(all="ignore"):
            w = w / scale
    return fp8_encode(w.astype(np.float32), kind), scale


# ---------------------------------------------------------------- writing


def main():
    model, cfg_path, out_dir = sys.argv[1:4]
    fmt = "safetensors"
    if len(sys.argv) > 5 and sys.argv[4] == "--source-format":
        fmt = sys.argv[5]
    cfg = json.load(open(cfg_path))
    scheme = SCHEMES[cfg["quantization"]]
    params, unused = mlc_params(cfg)
    order_list, reader, indexed = source_files(model, fmt)
    path_of = {n: p for p, n in order_list}
    files = {}
    for p, _ in order_list:
        if p not in files:
            files[p] = reader(p)
    tensors = {}
    for p, d in files.items():
        tensors.update(d)
    # loading order
    by_source = {}
    for mlc, srcs, kind in params:
        for s in srcs:
            by_source.setdefault(s, []).append(mlc)
    order = []
    for p in dict.fromkeys(p for p, _ in order_list):
        for _, n in [x for x in order_list if x[0] == p]:
            for mlc in by_source.get(n, []):
                if mlc not in order:
                    order.append(mlc)
    info = {m: (s, k) for m, s, k in params}
    # total parameters, with MLC's load/unload policy
    counts = {p: sum(v[0].size for n, v in d.items() if n not in unused) for p, d in files.items()}
    total = 0
    if not indexed:
        total = counts[order_list[0][0]]
    else:
        cached = set()
        for mlc in order:
            need = {path_of[s] for s in info[mlc][0]}
            load = need - cached
            if load:
                cached -= cached - need
                for p in load:
                    total += counts[p]
                    cached.add(p)
    # quantize and collect (name, shape, dtype, bytes)
    outs = []
    md = scheme[1]
    for mlc in order:
        srcs, kind = info[mlc]
        if mlc in ADD_ONE:
            # (x + 1).astype(dtype): the sum rounded to the source dtype, then cast
            x, src = tensors[srcs[0]]
            parts = [cast(cast(x + np.float32(1), "float32", src), src, md)]
        else:
            parts = [cast(tensors[s][0], tensors[s][1], md) for s in srcs]
        w = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        base = mlc[:-len(".weight")] if mlc.endswith(".weight") else mlc
        if scheme[0] == "group" and ((kind in ("linear",) ) or (kind == "lm_head" and scheme[6])
                                     or (kind == "embed" and scheme[5])):
            words, scale = group_quant(w, md, scheme[2], scheme[3])
            if scheme[4] == "KN" and kind != "embed":
                words, scale = np.ascontiguousarray(words.T), np.ascontiguousarray(scale.T)
            outs.append((base + ".q_weight", list(words.shape), "uint32", words.tobytes(), 4))
            outs.append((base + ".q_scale", list(scale.shape), md, encode(scale, md), 4 if md == "float32" else 2))
        elif scheme[0] == "fp8" and kind == "linear":
            q, scale = fp8_quant(w, scheme[2], scheme[3])
            name = "float8_e4m3fn" if scheme[2] == "e4m3" else "float8_e5m2"
            outs.append((base + ".q_weight", list(q.shape), name, q.tobytes(), 1))
            if scheme[3]:
                outs.append((base + ".q_scale", [1], "float32", encode(np.array([scale], np.float32), "float32"), 4))
                if scheme[4]:
                    nan = np.array([np.nan], np.float32)
                    outs.append((base + ".q_calibration_scale", [1], "float32", encode(nan, "float32"), 4))
        else:
            size = {"float16": 2, "bfloat16": 2, "float32": 4}[md]
            outs.append((mlc, list(w.shape), md, encode(w, md), size))
    # tvmjs sharding
    os.makedirs(out_dir, exist_ok=True)
    shards = []
    pending, pending_recs = bytearray(), []

    def commit(data, recs):
        name = "params_shard_%d.bin" % len(shards)
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        shards.append({"dataPath": name, "format": "raw-shard", "nbytes": len(data), "records": recs,
                       "md5sum": hashlib.md5(bytes(data)).hexdigest()})

    total_bytes = 0.0
    for name, shape, dtype, data, itemsize in outs:
        total_bytes += int(np.prod(shape)) * itemsize
        rec = {"name": name, "shape": shape, "dtype": dtype, "format": "f32-to-bf16", "nbytes": len(data)}
        if len(pending) + len(data) >= CAP:
            if len(data) * 2 >= CAP:
                rec["byteOffset"] = 0
                commit(data, [rec])
                continue
            commit(pending, pending_recs)
            pending, pending_recs = bytearray(), []
        rec["byteOffset"] = len(pending)
        pending_recs.append(rec)
        pending += data
    if pending:
        commit(pending, pending_recs)
    meta = {"ParamSize": len(outs), "ParamBytes": total_bytes, "BitsPerParam": total_bytes * 8.0 / total}
    with open(os.path.join(out_dir, "tensor-cache.json"), "w") as f:
        json.dump({"metadata": meta, "records": shards}, f, indent=4)
    if any(r["dtype"] == "float32" for s in shards for r in s["records"]):
        for s in shards:
            for r in s["records"]:
                if r["dtype"] == "float32":
                    r["format"] = "raw"
                    r["dtype"] = "bfloat16"
        with open(os.path.join(out_dir, "tensor-cache-b16.json"), "w") as f:
            json.dump({"metadata": meta, "records": shards}, f, indent=4)


if __name__ == "__main__":
    main()
