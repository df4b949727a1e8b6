#!/usr/bin/python3
"""Float32 reference forward pass of a HuggingFace decoder, in PyTorch.

    hf_forward.py MODEL_DIR IDS OUT [--sink N]

Reads MODEL_DIR/config.json and its safetensors weights (one file or
sharded; float32, float16 or bfloat16, all computed in float32), runs the
token ids IDS (comma-separated) through the model with a causal mask, and
writes the logits of every position to OUT as raw little-endian float32,
[len(IDS), vocab_size].

Written from the architectures' published definitions (transformers'
modeling_llama / modeling_mistral / modeling_qwen2 / modeling_qwen3):
RMSNorm, rotary embeddings in the rotate-half layout (with the "llama3"
frequency scaling), grouped-query attention, q/k/v biases (qwen2),
per-head q/k RMSNorm before the rotation (qwen3), a sliding window
(mistral: a query at position i sees keys j with i - j < window), SiLU
gated MLP and tied embeddings. --sink N also keeps the first N positions
visible beyond the window (MLC-LLM's attention sink). Gemma 2, Gemma 3 and
Phi-3 are in gemma_phi3.py. Needs Debian's python3-torch; never uses
transformers.
"""
import json
import math
import os
import struct
import sys

import torch

from gemma_phi3 import ARCHITECTURES

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).to(torch.float32)
    return out


def load_weights(d):
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        weights = {}
        for f in sorted(set(json.load(open(index))["weight_map"].values())):
            weights.update(load_safetensors(os.path.join(d, f)))
        return weights
    return load_safetensors(os.path.join(d, "model.safetensors"))


def rope_frequencies(c, head_dim):
    theta = c.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    rs = c.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), -1)


def forward(d, ids, sink=0):
    c = json.load(open(os.path.join(d, "config.json")))
    W = load_weights(d)
    mt = c["model_type"]
    if mt in ARCHITECTURES:
        return ARCHITECTURES[mt](c, W, ids)
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    hd = c.get("head_dim") or H // nh
    eps = c["rms_norm_eps"]
    window = c.get("sliding_window") if mt == "mistral" else None
    T = len(ids)
    inv = rope_frequencies(c, hd)
    pos = torch.arange(T).float()
    freqs = torch.outer(pos, inv)
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos(), emb.sin()
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    visible = j <= i
    if window:
        visible &= (i - j < window) | (j < sink)
    mask = torch.zeros(T, T).masked_fill(~visible, float("-inf"))
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for layer in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)

        def proj(name, heads):
            y = h @ W[p + "self_attn.%s_proj.weight" % name].T
            if p + "self_attn.%s_proj.bias" % name in W:
                y = y + W[p + "self_attn.%s_proj.bias" % name]
            return y.view(T, heads, hd).transpose(0, 1)

        q, k, v = proj("q", nh), proj("k", nkv), proj("v", nkv)
        if mt == "qwen3":
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, 0)
        v = v.repeat_interleave(nh // nkv, 0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, -1) @ v
        x = x + a.transpose(0, 1).reshape(T, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = h @ W[p + "mlp.gate_proj.weight"].T
        u = h @ W[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ W[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return x @ head.T


def main():
    args = sys.argv[1:]
    sink = 0
    if "--sink" in args:
        k = args.index("--sink")
        sink = int(args[k + 1])
        del args[k:k + 2]
    d, ids, out = args
    logits = forward(d, [int(t) for t in ids.split(",")], sink)
    with open(out, "wb") as f:
        f.write(logits.contiguous().numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    with torch.no_grad():
        main()
