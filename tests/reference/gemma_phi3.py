"""Float32 reference forward passes of Gemma 2, Gemma 3 (text) and Phi-3,
in PyTorch, for hf_forward.py (which reads the weights and writes the
logits). Written from the published definitions in transformers'
modeling_gemma2 / modeling_gemma3 / modeling_phi3 and modeling_rope_utils;
never uses transformers.

Gemma 2 and 3:
  - embeddings multiplied by sqrt(hidden_size) (a float32 constant);
  - RMSNorm computing x / rms(x) * (1 + w) in float32;
  - every layer: x + post_attention_norm(attn(input_norm(x))), then
    x + post_feedforward_norm(mlp(pre_feedforward_norm(x)));
  - MLP down(gelu_tanh(gate(x)) * up(x));
  - attention scores scaled by query_pre_attn_scalar ** -0.5; Gemma 2
    soft-caps them (cap * tanh(s / cap)) before the mask;
  - layer types from config.layer_types, else Gemma 2 alternates
    sliding (even layers) and full attention, and Gemma 3 makes every
    sliding_window_pattern-th layer full; a sliding layer's query at i sees
    keys j with i - j < sliding_window;
  - Gemma 3 normalises q and k per head (RMSNorm with 1 + w) before the
    rotation; its full layers rotate with rope_theta and rope_scaling
    (linear: frequencies divided by the factor), its sliding layers with
    rope_local_base_freq unscaled;
  - Gemma 2's final logits soft-capped by final_logit_softcapping.
Phi-3:
  - fused qkv_proj (q, k, v rows in that order) and gate_up_proj (gate
    rows, then up rows), SiLU gate, plain RMSNorm, pre-norm residuals;
  - rotation of the first head_dim * partial_rotary_factor dimensions;
  - LongRoPE (rope_scaling type longrope or su): frequencies divided by
    the long factors when the sequence is longer than
    original_max_position_embeddings, by the short ones otherwise (the
    choice covers the whole sequence, as transformers makes it from the
    largest position), cos and sin scaled by
    sqrt(1 + ln(s) / ln(original)) with s = max_position_embeddings /
    original_max_position_embeddings (1 when s <= 1), unless rope_scaling
    gives attention_factor;
  - an optional sliding window (config.sliding_window).
"""
import math

import torch


def gemma_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + w)


def plain_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), -1)


def gelu_tanh(x):
    return torch.nn.functional.gelu(x, approximate="tanh")


def inv_freq(base, dim):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def cos_sin(inv, T, scale=1.0):
    freqs = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat((freqs, freqs), -1)
    return emb.cos() * scale, emb.sin() * scale


def causal_mask(T, window=None):
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    visible = j <= i
    if window:
        visible &= i - j < window
    return torch.zeros(T, T).masked_fill(~visible, float("-inf"))


def attention(q, k, v, mask, scaling, softcap=None):
    nh, nkv = q.shape[0], k.shape[0]
    k = k.repeat_interleave(nh // nkv, 0)
    v = v.repeat_interleave(nh // nkv, 0)
    s = (q @ k.transpose(1, 2)) * scaling
    if softcap is not None:
        s = torch.tanh(s / softcap) * softcap
    return torch.softmax(s + mask, -1) @ v


def text_config(c):
    """The language model's configuration (a multimodal Gemma 3 nests it)."""
    if c.get("model_type") == "gemma3" and isinstance(c.get("text_config"), dict):
        return dict(c["text_config"], vocab_size=c.get("vocab_size", c["text_config"].get("vocab_size")))
    return c


def layer_types(c, gemma3):
    if c.get("layer_types"):
        return c["layer_types"]
    n = c["num_hidden_layers"]
    if gemma3:
        pattern = c.get("sliding_window_pattern", 6)
        return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
    return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]


def gemma_forward(c, W, ids):
    gemma3 = c["model_type"] != "gemma2"
    pre = "language_model." if c["model_type"] == "gemma3" and "text_config" in c else ""
    c = text_config(c)
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    hd = c.get("head_dim") or H // nh
    eps = c.get("rms_norm_eps", 1e-6)
    T = len(ids)
    scaling = c.get("query_pre_attn_scalar", hd) ** -0.5
    softcap = None if gemma3 else c.get("attn_logit_softcapping")
    types = layer_types(c, gemma3)
    window = c.get("sliding_window")
    masks = {"full_attention": causal_mask(T), "sliding_attention": causal_mask(T, window)}
    global_inv = inv_freq(c.get("rope_theta", 1000000.0 if gemma3 else 10000.0), hd)
    rs = c.get("rope_scaling")
    if gemma3 and rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind != "linear":
            raise ValueError("rope_scaling %r: only linear is written here" % kind)
        global_inv = global_inv / rs["factor"]
    rope = {"full_attention": cos_sin(global_inv, T)}
    rope["sliding_attention"] = cos_sin(inv_freq(c.get("rope_local_base_freq", 10000.0), hd), T) if gemma3 \
        else rope["full_attention"]
    x = W[pre + "model.embed_tokens.weight"][torch.tensor(ids)] * torch.tensor(H ** 0.5, dtype=torch.float32)
    for layer in range(c["num_hidden_layers"]):
        p = "%smodel.layers.%d." % (pre, layer)
        kind = types[layer]
        cos, sin = rope[kind]
        h = gemma_norm(x, W[p + "input_layernorm.weight"], eps)
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(T, nh, hd).transpose(0, 1)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        if gemma3:
            q = gemma_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = gemma_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = attention(q, k, v, masks[kind], scaling, softcap)
        a = a.transpose(0, 1).reshape(T, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        x = x + gemma_norm(a, W[p + "post_attention_layernorm.weight"], eps)
        h = gemma_norm(x, W[p + "pre_feedforward_layernorm.weight"], eps)
        m = (gelu_tanh(h @ W[p + "mlp.gate_proj.weight"].T) * (h @ W[p + "mlp.up_proj.weight"].T))
        m = m @ W[p + "mlp.down_proj.weight"].T
        x = x + gemma_norm(m, W[p + "post_feedforward_layernorm.weight"], eps)
    x = gemma_norm(x, W[pre + "model.norm.weight"], eps)
    logits = x @ W.get(pre + "lm_head.weight", W[pre + "model.embed_tokens.weight"]).T
    cap = None if gemma3 else c.get("final_logit_softcapping")
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits


def longrope(c, rot, T):
    """(inverse frequencies, cos/sin scale) of Phi-3's LongRoPE for a
    sequence of T tokens, or None without rope_scaling."""
    rs = c.get("rope_scaling")
    if not rs:
        return None
    kind = rs.get("type", rs.get("rope_type"))
    if kind not in ("longrope", "su"):
        raise ValueError("rope_scaling %r: only longrope (su) is written here" % kind)
    original = c.get("original_max_position_embeddings") or c["max_position_embeddings"]
    factor = c["max_position_embeddings"] / original
    scale = rs.get("attention_factor")
    if scale is None:
        scale = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    ext = torch.tensor(rs["long_factor"] if T > original else rs["short_factor"], dtype=torch.float32)
    base = c.get("rope_theta", 10000.0)
    return 1.0 / (ext * base ** (torch.arange(0, rot, 2, dtype=torch.int64).float() / rot)), scale


def phi3_forward(c, W, ids):
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    hd = H // nh
    rot = int(hd * c.get("partial_rotary_factor", 1.0))
    eps = c["rms_norm_eps"]
    T = len(ids)
    lr = longrope(c, rot, T)
    cos, sin = cos_sin(lr[0], T, lr[1]) if lr else cos_sin(inv_freq(c.get("rope_theta", 10000.0), rot), T)
    mask = causal_mask(T, c.get("sliding_window"))
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for layer in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        h = plain_norm(x, W[p + "input_layernorm.weight"], eps)
        qkv = h @ W[p + "self_attn.qkv_proj.weight"].T
        q = qkv[:, :nh * hd].view(T, nh, hd).transpose(0, 1)
        k = qkv[:, nh * hd:(nh + nkv) * hd].view(T, nkv, hd).transpose(0, 1)
        v = qkv[:, (nh + nkv) * hd:].view(T, nkv, hd).transpose(0, 1)

        def rotate(t):
            r, keep = t[..., :rot], t[..., rot:]
            return torch.cat((r * cos + rotate_half(r) * sin, keep), -1)
        a = attention(rotate(q), rotate(k), v, mask, hd ** -0.5)
        x = x + a.transpose(0, 1).reshape(T, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        h = plain_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        gate, up = (h @ W[p + "mlp.gate_up_proj.weight"].T).chunk(2, dim=-1)
        x = x + (up * torch.nn.functional.silu(gate)) @ W[p + "mlp.down_proj.weight"].T
    x = plain_norm(x, W["model.norm.weight"], eps)
    return x @ W.get("lm_head.weight", W["model.embed_tokens.weight"]).T


ARCHITECTURES = {"gemma2": gemma_forward, "gemma3_text": gemma_forward, "gemma3": gemma_forward,
                 "phi3": phi3_forward}
