#!/usr/bin/python3
"""Write and read GGUF files for the tests, following the published GGUF
specification (ggml's docs/gguf.md) and llama.cpp's conversion conventions,
independently of mlc-pipe's C reader.

    gguf_write.py write HF_DIR OUT.gguf [--type f32|f16|q8_0|q4_0|q4_k|q6_k]
                  [--tokenizer-json] [--pre NAME] [--no-bos] [--chat-template FILE]
    gguf_write.py tokenizer-model TOKENIZER_DIR ARCH OUT.gguf [--pre NAME]
    gguf_write.py dequant IN.gguf OUT_DIR     # HF-named float32 safetensors
    gguf_write.py hostile KIND OUT.gguf       # a malformed file (see HOSTILE)

`write` converts a HuggingFace llama/qwen2/qwen3 directory as llama.cpp's
converter does: tensor and metadata names, the rotary permutation of
q_proj/k_proj rows for llama, 1-D tensors kept float32, the rest stored in
--type. The tokenizer comes from tokenizer.model (SentencePiece pieces,
scores and types: a "llama" vocabulary) or, with --tokenizer-json, from
tokenizer.json (byte-level BPE with merges: "gpt2", pre-tokenizer --pre; a
SentencePiece-style BPE with byte fallback becomes "llama" with scores -id).
`tokenizer-model` writes a tiny random model around a real tokenizer, for
the tokenizer tests. `dequant` reads a GGUF back (numpy dequantizers written
from the block layouts) into HuggingFace names and layout.
"""
import json, os, struct, sys
import numpy as np

# ---- the format ----

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
T_F32, T_F16, T_Q4_0, T_Q8_0, T_Q4_K, T_Q6_K, T_BF16 = 0, 1, 2, 8, 12, 14, 30
BLOCK = {T_F32: (1, 4), T_F16: (1, 2), T_BF16: (1, 2), T_Q4_0: (32, 18), T_Q8_0: (32, 34),
         T_Q4_K: (256, 144), T_Q6_K: (256, 210)}
ALIGN = 32


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(v, t):
    if t == STRING:
        return gstr(v)
    if t == ARRAY:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        if et == STRING:
            return out + b"".join(gstr(x) for x in items)
        fmt = {U8: "B", I8: "b", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q", I64: "q", F64: "d"}[et]
        return out + struct.pack("<%d%s" % (len(items), fmt), *items)
    fmt = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q",
           I64: "q", F64: "d"}[t]
    return struct.pack("<" + fmt, v)


def write_gguf(path, kvs, tensors, version=3):
    """kvs: [(key, type, value)]; tensors: [(name, ggml_type, ne list, bytes)]."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        head += gstr(k) + struct.pack("<I", t) + value(v, t)
    offset, infos, blobs = 0, b"", []
    for name, t, ne, data in tensors:
        infos += gstr(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        infos += struct.pack("<IQ", t, offset)
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    body = head + infos
    body += b"\0" * ((-len(body)) % ALIGN)
    with open(path + ".tmp", "wb") as f:
        f.write(body)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


# ---- quantizers (simple, valid blocks; not llama.cpp's search for the best scales) ----

def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def q8_0(x):
    b = x.reshape(-1, 32)
    d = f16(np.abs(b).max(axis=1) / 127.0)
    inv = np.where(d.astype(np.float32) > 0, 1.0 / np.maximum(d.astype(np.float32), 1e-30), 0)
    q = np.clip(np.rint(b * inv[:, None]), -127, 127).astype(np.int8)
    out = np.zeros((b.shape[0], 34), np.uint8)
    out[:, 0:2] = d.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def q4_0(x):
    b = x.reshape(-1, 32)
    idx = np.abs(b).argmax(axis=1)
    mx = b[np.arange(len(b)), idx]
    d = f16(mx / -8.0)
    df = d.astype(np.float32)
    inv = np.where(df != 0, 1.0 / np.where(df != 0, df, 1), 0)
    q = np.clip(np.floor(b * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    out = np.zeros((b.shape[0], 18), np.uint8)
    out[:, 0:2] = d.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def q4_k(x):
    b = x.reshape(-1, 8, 32).astype(np.float32)
    mn = np.minimum(b.min(axis=2), 0)             # value = d*sc*q - dmin*m, m >= 0
    mx = b.max(axis=2)
    scale = (mx - mn) / 15.0
    d = f16(scale.max(axis=1) / 63.0)
    dmin = f16((-mn).max(axis=1) / 63.0)
    df, dminf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    sc = np.clip(np.rint(np.where(df > 0, scale / np.where(df > 0, df, 1), 0)), 0, 63).astype(np.uint8)
    m = np.clip(np.rint(np.where(dminf > 0, -mn / np.where(dminf > 0, dminf, 1), 0)), 0, 63).astype(np.uint8)
    step = (df * sc)[:, :, None]
    q = np.clip(np.rint(np.where(step > 0, (b + (dminf * m)[:, :, None]) / np.where(step > 0, step, 1), 0)), 0,
                15).astype(np.uint8)
    scales = np.zeros((b.shape[0], 12), np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    qs = np.zeros((b.shape[0], 128), np.uint8)
    for k in range(4):
        qs[:, 32 * k:32 * k + 32] = q[:, 2 * k] | (q[:, 2 * k + 1] << 4)
    out = np.concatenate([d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2), scales, qs], axis=1)
    return out.tobytes()


def q6_k(x):
    b = x.reshape(-1, 16, 16).astype(np.float32)
    amax = np.abs(b).max(axis=2)
    scale = amax / 31.0
    d = f16(scale.max(axis=1) / 127.0)
    df = d.astype(np.float32)[:, None]
    sc = np.clip(np.rint(np.where(df > 0, scale / np.where(df > 0, df, 1), 0)), -128, 127).astype(np.int8)
    step = (df * sc)[:, :, None]
    L = (np.clip(np.rint(np.where(step != 0, b / np.where(step != 0, step, 1), 0)), -32, 31) + 32).astype(np.uint8)
    L = L.reshape(-1, 256)
    ql = np.zeros((L.shape[0], 128), np.uint8)
    qh = np.zeros((L.shape[0], 64), np.uint8)
    for half in range(2):
        j = 128 * half
        a, bb, c, e = (L[:, j + o:j + o + 32] for o in (0, 32, 64, 96))
        ql[:, 64 * half:64 * half + 32] = (a & 15) | ((c & 15) << 4)
        ql[:, 64 * half + 32:64 * half + 64] = (bb & 15) | ((e & 15) << 4)
        qh[:, 32 * half:32 * half + 32] = (a >> 4) | ((bb >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)
    out = np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8).reshape(-1, 2)], axis=1)
    return out.tobytes()


QUANT = {"q8_0": (T_Q8_0, q8_0), "q4_0": (T_Q4_0, q4_0), "q4_k": (T_Q4_K, q4_k), "q6_k": (T_Q6_K, q6_k)}

# ---- dequantizers ----


def deq(t, raw, n):
    a = np.frombuffer(raw, np.uint8)
    if t == T_F32:
        return a.view(np.float32).copy()
    if t == T_F16:
        return a.view(np.float16).astype(np.float32)
    if t == T_BF16:
        return (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    blk, size = BLOCK[t]
    a = a.reshape(-1, size)
    half = lambda col: a[:, col:col + 2].copy().view(np.float16).astype(np.float32)[:, 0]
    if t == T_Q8_0:
        return (half(0)[:, None] * a[:, 2:].view(np.int8).astype(np.float32)).reshape(-1)
    if t == T_Q4_0:
        q = np.concatenate([a[:, 2:] & 15, a[:, 2:] >> 4], axis=1).astype(np.float32) - 8
        return (q * half(0)[:, None]).reshape(-1)
    if t == T_Q4_K:
        d, dmin, s = half(0), half(2), a[:, 4:16].astype(np.int32)
        sc = np.zeros((len(a), 8), np.int32)
        m = np.zeros((len(a), 8), np.int32)
        sc[:, :4], m[:, :4] = s[:, 0:4] & 63, s[:, 4:8] & 63
        sc[:, 4:] = (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)
        m[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
        qs = a[:, 16:].reshape(-1, 4, 32)
        q = np.stack([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32).astype(np.float32)
        y = (d[:, None] * sc).astype(np.float32)[:, :, None] * q - (dmin[:, None] * m).astype(np.float32)[:, :, None]
        return y.reshape(-1)
    if t == T_Q6_K:
        ql, qh, sc, d = a[:, :128], a[:, 128:192], a[:, 192:208].view(np.int8), half(208)
        out = np.zeros((len(a), 256), np.float32)
        for h in range(2):
            l0, l1, hh = ql[:, 64 * h:64 * h + 32], ql[:, 64 * h + 32:64 * h + 64], qh[:, 32 * h:32 * h + 32]
            qs = [(l0 & 15) | ((hh & 3) << 4), (l1 & 15) | (((hh >> 2) & 3) << 4),
                  (l0 >> 4) | (((hh >> 4) & 3) << 4), (l1 >> 4) | (((hh >> 6) & 3) << 4)]
            for k in range(4):
                s = np.repeat(sc[:, 8 * h + 2 * k:8 * h + 2 * k + 2], 16, axis=1).astype(np.float32)
                out[:, 128 * h + 32 * k:128 * h + 32 * k + 32] = (d[:, None] * s) * (qs[k].astype(np.float32) - 32)
        return out.reshape(-1)
    raise ValueError("type %d" % t)

# ---- HuggingFace side ----


def read_safetensors(d):
    files = []
    if os.path.exists(os.path.join(d, "model.safetensors.index.json")):
        idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
        files = sorted(set(idx["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        raw = open(os.path.join(d, fn), "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        head = json.loads(raw[8:8 + n])
        base = 8 + n
        for name, info in head.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            buf = raw[base + b:base + e]
            dt = info["dtype"]
            if dt == "F32":
                a = np.frombuffer(buf, np.float32)
            elif dt == "F16":
                a = np.frombuffer(buf, np.float16)
            elif dt == "BF16":
                a = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
            out[name] = (a.reshape(info["shape"]), dt)
    return out


def write_safetensors(path, tensors):
    head, off, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        head[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


# Gemma's and Phi-3's names where they differ from llama's
LAYER_GEMMA = [("post_attention_layernorm.weight", "post_attention_norm.weight"),
               ("pre_feedforward_layernorm.weight", "ffn_norm.weight"),
               ("post_feedforward_layernorm.weight", "post_ffw_norm.weight")]
LAYER_PHI3 = [("self_attn.qkv_proj.weight", "attn_qkv.weight"), ("mlp.gate_up_proj.weight", "ffn_up.weight")]
ARCH = "llama"

LAYER = [("input_layernorm.weight", "attn_norm.weight"), ("self_attn.q_proj.weight", "attn_q.weight"),
         ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.v_proj.weight", "attn_v.weight"),
         ("self_attn.q_proj.bias", "attn_q.bias"), ("self_attn.k_proj.bias", "attn_k.bias"),
         ("self_attn.v_proj.bias", "attn_v.bias"), ("self_attn.o_proj.weight", "attn_output.weight"),
         ("self_attn.q_norm.weight", "attn_q_norm.weight"), ("self_attn.k_norm.weight", "attn_k_norm.weight"),
         ("post_attention_layernorm.weight", "ffn_norm.weight"), ("mlp.gate_proj.weight", "ffn_gate.weight"),
         ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.down_proj.weight", "ffn_down.weight")]
GLOBAL = [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"),
          ("lm_head.weight", "output.weight")]


def layer_table():
    if ARCH.startswith("gemma"):
        return LAYER_GEMMA + LAYER
    return LAYER_PHI3 + LAYER if ARCH == "phi3" else LAYER


def gguf_name(hf):
    for h, g in GLOBAL:
        if hf == h:
            return g
    parts = hf.split(".")
    if parts[:2] == ["model", "layers"]:
        rest = ".".join(parts[3:])
        for h, g in layer_table():
            if rest == h:
                return "blk.%s.%s" % (parts[2], g)
    raise KeyError(hf)


def hf_name(g):
    for h, gg in GLOBAL:
        if g == gg:
            return h
    parts = g.split(".")
    rest = ".".join(parts[2:])
    for h, gg in layer_table():
        if rest == gg:
            return "model.layers.%s.%s" % (parts[1], h)
    raise KeyError(g)


def permute(w, heads):
    """llama.cpp's rotary permutation of q/k rows: each head's halves interleaved."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, heads):
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

# ---- tokenizers ----


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def proto_fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, wt = k >> 3, k & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v = b[i:i + n]
            i += n
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        else:
            raise ValueError("wire type %d" % wt)
        yield f, v


def spm_vocab(path):
    """tokenizer.model: (pieces, scores, types) in id order."""
    pieces, scores, types = [], [], []
    for f, v in proto_fields(open(path, "rb").read()):
        if f != 1:
            continue
        p, s, t = "", 0.0, 1
        for ff, vv in proto_fields(v):
            if ff == 1:
                p = vv.decode()
            elif ff == 2:
                s = struct.unpack("<f", vv)[0]
            elif ff == 3:
                t = vv
        pieces.append(p)
        scores.append(s)
        types.append(t)
    return pieces, scores, types


def json_vocab(path):
    """tokenizer.json: (model, tokens, types, scores or merges)."""
    t = json.load(open(path))
    m = t["model"]
    by_id = {i: tok for tok, i in m["vocab"].items()}
    added = {a["id"]: a for a in t.get("added_tokens", [])}
    n = max(list(by_id) + list(added)) + 1
    tokens, types = [], []
    for i in range(n):
        if i in added:
            tokens.append(added[i]["content"])
            types.append(3 if added[i]["special"] else 4)
        elif i in by_id:
            tok = by_id[i]
            tokens.append(tok)
            byte = len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">")
            types.append(6 if m.get("byte_fallback") and byte else 1)
        else:
            tokens.append("[PAD%d]" % i)
            types.append(5)
    if m.get("byte_fallback"):
        unk = m.get("unk_token")
        for i, tok in enumerate(tokens):
            if tok == unk:
                types[i] = 2
        # SentencePiece's score of a piece is what ranks its merges: the
        # first merge that makes a piece gives its rank (pieces no merge
        # makes are single characters, never merged into)
        rank = {}
        for r, x in enumerate(m["merges"]):
            a, b = x if isinstance(x, list) else x.split(" ", 1)
            rank.setdefault(a + b, r)
        scores = [-float(rank.get(tokens[i], len(m["merges"]) + i)) if types[i] in (1, 4) else 0.0 for i in range(n)]
        return "llama", tokens, types, scores
    merges = [" ".join(x) if isinstance(x, list) else x for x in m["merges"]]
    return "gpt2", tokens, types, merges


def tokenizer_kvs(tok_dir, use_json, pre, add_bos, chat_template):
    kvs = []
    cfg_path = os.path.join(tok_dir, "tokenizer_config.json")
    tcfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
    if not use_json:
        pieces, scores, types = spm_vocab(os.path.join(tok_dir, "tokenizer.model"))
        kvs += [("tokenizer.ggml.model", STRING, "llama"), ("tokenizer.ggml.tokens", ARRAY, (STRING, pieces)),
                ("tokenizer.ggml.scores", ARRAY, (F32, scores)), ("tokenizer.ggml.token_type", ARRAY, (I32, types))]
        tokens = pieces
    else:
        model, tokens, types, extra = json_vocab(os.path.join(tok_dir, "tokenizer.json"))
        kvs += [("tokenizer.ggml.model", STRING, model), ("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
                ("tokenizer.ggml.token_type", ARRAY, (I32, types))]
        if model == "llama":
            kvs.append(("tokenizer.ggml.scores", ARRAY, (F32, extra)))
            norm = json.dumps(json.load(open(os.path.join(tok_dir, "tokenizer.json"))).get("normalizer"))
            kvs.append(("tokenizer.ggml.add_space_prefix", BOOL, '"Prepend"' in norm))
        else:
            kvs += [("tokenizer.ggml.merges", ARRAY, (STRING, extra)), ("tokenizer.ggml.pre", STRING, pre or "default")]
    def tok_id(key):
        v = tcfg.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        return tokens.index(v) if v in tokens else None
    for key, name in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"),
                      ("pad_token", "padding_token_id")):
        i = tok_id(key)
        if i is not None:
            kvs.append(("tokenizer.ggml." + name, U32, i))
    if add_bos is None:
        add_bos = bool(tcfg.get("add_bos_token", False))
    kvs.append(("tokenizer.ggml.add_bos_token", BOOL, add_bos))
    kvs.append(("tokenizer.ggml.add_eos_token", BOOL, bool(tcfg.get("add_eos_token", False))))
    ct = chat_template or tcfg.get("chat_template")
    if isinstance(ct, str):
        kvs.append(("tokenizer.chat_template", STRING, ct))
    return kvs

# ---- conversion ----


def arch_kvs(arch, c):
    heads = c["num_attention_heads"]
    head_dim = c.get("head_dim") or c["hidden_size"] // heads
    if arch in ("gemma2", "gemma3", "phi3"):
        return arch_kvs_gemma_phi3(arch, c, head_dim)
    kvs = [("general.architecture", STRING, arch), ("general.name", STRING, "test"),
           ("general.alignment", U32, ALIGN),
           (arch + ".context_length", U32, c.get("max_position_embeddings", 2048)),
           (arch + ".embedding_length", U32, c["hidden_size"]),
           (arch + ".block_count", U32, c["num_hidden_layers"]),
           (arch + ".feed_forward_length", U32, c["intermediate_size"]),
           (arch + ".attention.head_count", U32, heads),
           (arch + ".attention.head_count_kv", U32, c.get("num_key_value_heads") or heads),
           (arch + ".attention.layer_norm_rms_epsilon", F32, c["rms_norm_eps"]),
           (arch + ".rope.freq_base", F32, c.get("rope_theta", 10000.0)),
           (arch + ".rope.dimension_count", U32, head_dim),
           (arch + ".vocab_size", U32, c["vocab_size"])]
    if c.get("head_dim"):
        kvs += [(arch + ".attention.key_length", U32, head_dim), (arch + ".attention.value_length", U32, head_dim)]
    return kvs


def arch_kvs_gemma_phi3(arch, c, head_dim):
    """As llama.cpp's converter writes Gemma 2, Gemma 3 and Phi-3."""
    kvs = [("general.architecture", STRING, arch), ("general.name", STRING, "test"), ("general.alignment", U32, ALIGN),
           (arch + ".context_length", U32, c["max_position_embeddings"]),
           (arch + ".embedding_length", U32, c["hidden_size"]),
           (arch + ".block_count", U32, c["num_hidden_layers"]),
           (arch + ".feed_forward_length", U32, c["intermediate_size"]),
           (arch + ".attention.head_count", U32, c["num_attention_heads"]),
           (arch + ".attention.head_count_kv", U32, c.get("num_key_value_heads") or c["num_attention_heads"]),
           (arch + ".attention.layer_norm_rms_epsilon", F32, c["rms_norm_eps"])]
    if arch == "phi3":
        kvs += [(arch + ".rope.dimension_count", U32, head_dim), (arch + ".rope.freq_base", F32, c["rope_theta"]),
                (arch + ".rope.scaling.original_context_length", U32, c["original_max_position_embeddings"]),
                (arch + ".attention.sliding_window", U32, c["sliding_window"])]
        return kvs
    kvs += [(arch + ".attention.key_length", U32, head_dim), (arch + ".attention.value_length", U32, head_dim),
            (arch + ".attention.sliding_window", U32, c["sliding_window"])]
    if arch == "gemma2":
        kvs += [(arch + ".attn_logit_softcapping", F32, c["attn_logit_softcapping"]),
                (arch + ".final_logit_softcapping", F32, c["final_logit_softcapping"])]
    else:
        kvs.append((arch + ".rope.freq_base", F32, c["rope_theta"]))
        rs = c.get("rope_scaling")
        if rs:
            kvs += [(arch + ".rope.scaling.type", STRING, rs["rope_type"]),
                    (arch + ".rope.scaling.factor", F32, rs["factor"])]
    return kvs


def store(a, qtype):
    """(ggml type, bytes) as llama.cpp stores a tensor: 1-D float32, the rest in qtype."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 1 or qtype == "f32":
        return T_F32, a.tobytes()
    if qtype == "f16":
        return T_F16, a.astype(np.float16).tobytes()
    t, fn = QUANT[qtype]
    if a.shape[-1] % BLOCK[t][0]:
        return T_F16, a.astype(np.float16).tobytes()     # llama.cpp's fallback for rows that do not fit
    return t, fn(a)


def cmd_write(args):
    flags = {a for a in args if a in ("--tokenizer-json", "--no-bos")}
    rest = [a for a in args if a not in flags]
    hf, out = rest[0], rest[1]
    opts = dict(zip(rest[2::2], rest[3::2]))
    qtype = opts.get("--type", "f32")
    c = json.load(open(os.path.join(hf, "config.json")))
    global ARCH
    arch = c["model_type"]
    if arch == "mistral":
        arch = "llama"                                    # llama.cpp writes Mistral as llama
    if arch == "gemma3_text":
        arch = "gemma3"
    ARCH = arch
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads") or c["num_attention_heads"]
    kvs = arch_kvs(arch, c)
    kvs.insert(3, ("general.file_type", U32, {"f32": 0, "f16": 1, "q8_0": 7, "q4_0": 2, "q4_k": 15, "q6_k": 18}[qtype]))
    gpath = os.path.join(hf, "generation_config.json")
    gen = json.load(open(gpath)) if os.path.exists(gpath) else {}
    for field, key in (("temperature", "temp"), ("top_p", "top_p"), ("repetition_penalty", "penalty_repeat")):
        if isinstance(gen.get(field), (int, float)):
            kvs.append(("general.sampling." + key, F32, gen[field]))
    ct = open(opts["--chat-template"]).read() if "--chat-template" in opts else None
    kvs += tokenizer_kvs(hf, "--tokenizer-json" in flags, opts.get("--pre"), False if "--no-bos" in flags else None, ct)
    weights = read_safetensors(hf)
    tensors = []
    for name in sorted(weights, key=lambda n: (gguf_name(n).startswith("blk."), gguf_name(n))):
        a = weights[name][0].astype(np.float32)
        if arch == "llama" and name.endswith("q_proj.weight"):
            a = permute(a, heads)
        if arch == "llama" and name.endswith("k_proj.weight"):
            a = permute(a, kv)
        if arch.startswith("gemma") and name.endswith("norm.weight"):
            a = a + 1                                     # ggml's RMSNorm multiplies by w: Gemma's 1 + w
        t, data = store(a, qtype)
        tensors.append((gguf_name(name), t, list(reversed(a.shape)), data))
    rs = c.get("rope_scaling") or {}
    if arch == "llama" and rs.get("rope_type") == "llama3":
        # llama.cpp keeps Llama 3's scaling as per-frequency factors
        import math
        hd = c.get("head_dim") or c["hidden_size"] // heads
        base, factor = c.get("rope_theta", 10000.0), rs["factor"]
        low, high, old = rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        factors = []
        for i in range(0, hd, 2):
            wavelen = 2 * math.pi * base ** (i / hd)
            if wavelen < old / high:
                factors.append(1.0)
            elif wavelen > old / low:
                factors.append(factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                factors.append(1 / ((1 - smooth) / factor + smooth))
        f = np.array(factors, np.float32)
        tensors.append(("rope_freqs.weight", T_F32, [len(f)], f.tobytes()))
    if arch == "phi3" and c.get("rope_scaling"):
        for which in ("long", "short"):
            f = np.array(c["rope_scaling"][which + "_factor"], np.float32)
            tensors.append(("rope_factors_%s.weight" % which, T_F32, [len(f)], f.tobytes()))
    write_gguf(out, kvs, tensors)


def cmd_tokenizer_model(args):
    """A tiny random model of ARCH around a real tokenizer (the vocabulary's size)."""
    tok_dir, arch, out = args[0], args[1], args[2]
    opts = dict(zip(args[3::2], args[4::2]))
    use_json = not os.path.exists(os.path.join(tok_dir, "tokenizer.model"))
    kvs = tokenizer_kvs(tok_dir, use_json, opts.get("--pre"), None, None)
    n = len(dict((k, v) for k, t, v in kvs)["tokenizer.ggml.tokens"][1])
    c = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
         "num_key_value_heads": 1, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "vocab_size": n,
         "max_position_embeddings": 4096}
    if arch == "qwen3":
        c["head_dim"] = 4
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (n, 8), "output_norm.weight": (8,), "blk.0.attn_norm.weight": (8,),
              "blk.0.attn_q.weight": (8, 8), "blk.0.attn_k.weight": (4, 8), "blk.0.attn_v.weight": (4, 8),
              "blk.0.attn_output.weight": (8, 8), "blk.0.ffn_norm.weight": (8,), "blk.0.ffn_gate.weight": (16, 8),
              "blk.0.ffn_up.weight": (16, 8), "blk.0.ffn_down.weight": (8, 16)}
    if arch == "qwen3":
        shapes.update({"blk.0.attn_q_norm.weight": (4,), "blk.0.attn_k_norm.weight": (4,)})
    tensors = []
    for name, shape in shapes.items():
        t, data = store(rng.standard_normal(shape).astype(np.float32) * 0.02, "f16")
        tensors.append((name, t, list(reversed(shape)), data))
    write_gguf(out, arch_kvs(arch, c) + kvs, tensors)


def read_gguf(path):
    raw = open(path, "rb").read()
    assert raw[:4] == b"GGUF"
    ver, nt, nkv = struct.unpack_from("<IQQ", raw, 4)
    pos = 24

    def rstr():
        nonlocal pos
        n = struct.unpack_from("<Q", raw, pos)[0]
        pos += 8
        s = raw[pos:pos + n]
        pos += n
        return s.decode("utf-8", "replace")

    sizes = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q", I64: "q", F64: "d"}

    def rval(t):
        nonlocal pos
        if t == STRING:
            return rstr()
        if t == ARRAY:
            et, n = struct.unpack_from("<IQ", raw, pos)
            pos += 12
            return [rval(et) for _ in range(n)]
        v = struct.unpack_from("<" + sizes[t], raw, pos)[0]
        pos += struct.calcsize(sizes[t])
        return v

    kv = {}
    for _ in range(nkv):
        k = rstr()
        t = struct.unpack_from("<I", raw, pos)[0]
        pos += 4
        kv[k] = rval(t)
    infos = []
    for _ in range(nt):
        name = rstr()
        nd = struct.unpack_from("<I", raw, pos)[0]
        pos += 4
        ne = struct.unpack_from("<%dQ" % nd, raw, pos)
        pos += 8 * nd
        t, off = struct.unpack_from("<IQ", raw, pos)
        pos += 12
        infos.append((name, ne, t, off))
    align = kv.get("general.alignment", 32)
    start = pos + (-pos) % align
    out = {}
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        blk, size = BLOCK[t]
        a = deq(t, raw[start + off:start + off + n // blk * size], n)
        out[name] = a.reshape(list(reversed(ne)))
    return kv, out


def cmd_dequant(args):
    kv, tensors = read_gguf(args[0])
    arch = kv["general.architecture"]
    heads = kv[arch + ".attention.head_count"]
    kvh = kv.get(arch + ".attention.head_count_kv", heads)
    global ARCH
    ARCH = arch
    out = {}
    for name, a in tensors.items():
        if name.startswith("rope_factors_"):
            continue
        if arch.startswith("gemma") and name.endswith("norm.weight"):
            a = a - 1
        if arch == "llama" and name.endswith("attn_q.weight"):
            a = unpermute(a, heads)
        if arch == "llama" and name.endswith("attn_k.weight"):
            a = unpermute(a, kvh)
        out[hf_name(name)] = a
    os.makedirs(args[1], exist_ok=True)
    write_safetensors(os.path.join(args[1], "model.safetensors"), out)

# ---- hostile files ----


def tiny(kvs=None, tensors=None):
    kvs = kvs if kvs is not None else [("general.architecture", STRING, "llama")]
    tensors = tensors if tensors is not None else [("token_embd.weight", T_F32, [4, 2], b"\0" * 32)]
    return kvs, tensors


HOSTILE = ["lying-offset", "overflow-dims", "huge-string", "unknown-type", "unknown-value-type", "truncated",
           "duplicate-key", "misaligned", "overlap", "huge-count", "bad-magic", "zero-dims", "bad-alignment"]


def cmd_hostile(args):
    kind, out = args
    kvs, tensors = tiny()
    write_gguf(out, kvs, tensors)
    raw = bytearray(open(out, "rb").read())
    # where the single tensor's info sits: after the header and the metadata
    meta_end = 24 + 8 + len("general.architecture") + 4 + 8 + len("llama")
    name_end = meta_end + 8 + len("token_embd.weight")
    type_at = name_end + 4 + 16
    off_at = type_at + 4
    if kind == "lying-offset":
        struct.pack_into("<Q", raw, off_at, 1 << 20)
    elif kind == "overflow-dims":
        struct.pack_into("<QQ", raw, name_end + 4, 1 << 62, 1 << 62)
    elif kind == "huge-string":
        struct.pack_into("<Q", raw, 24 + 8 + len("general.architecture") + 4, 1 << 61)
    elif kind == "unknown-type":
        struct.pack_into("<I", raw, type_at, 99)
    elif kind == "unknown-value-type":
        struct.pack_into("<I", raw, 24 + 8 + len("general.architecture"), 77)
    elif kind == "truncated":
        raw = raw[:name_end - 3]
    elif kind == "duplicate-key":
        write_gguf(out, kvs + kvs, tensors)
        return
    elif kind == "misaligned":
        struct.pack_into("<Q", raw, off_at, 4)
    elif kind == "overlap":
        write_gguf(out, kvs, tensors + [("output.weight", T_F32, [4, 2], b"\0" * 32)])
        raw = bytearray(open(out, "rb").read())
        second_off = off_at + 8 + 8 + len("output.weight") + 4 + 16 + 4
        struct.pack_into("<Q", raw, second_off, 0)
    elif kind == "huge-count":
        struct.pack_into("<Q", raw, 8, 1 << 60)
    elif kind == "bad-magic":
        raw[0:4] = b"GGUG"
    elif kind == "zero-dims":
        struct.pack_into("<I", raw, name_end, 0)
    elif kind == "bad-alignment":
        write_gguf(out, kvs + [("general.alignment", U32, 24)], tensors)
        return
    else:
        sys.exit("unknown kind " + kind)
    open(out, "wb").write(bytes(raw))


if __name__ == "__main__":
    cmd = {"write": cmd_write, "tokenizer-model": cmd_tokenizer_model, "dequant": cmd_dequant,
           "hostile": cmd_hostile}[sys.argv[1]]
    cmd(sys.argv[2:])
