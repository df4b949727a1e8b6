#!/usr/bin/python3
"""An independent computation of the activation scales FP8 calibration
measures, for tests.

    calib_oracle.py MODEL_DIR RECORD_JSON

MODEL_DIR holds the calibration build (mlc-chat-config.json with an
e4m3_e4m3_f16_max_calibrate llama-family model, its tensor-cache.json and
shards). RECORD_JSON is the `calibration` record mlc-check wrote (as
mlc-dump prints it): for each sampled request the prompt's token ids and
the tokens the model generated, the batch width and the prefill chunk.

The model is run again, in float32 numpy, on exactly those tokens and in
the order the engine's scheduler runs them (requests start in sample order
as slots free up, each prompt prefilled in chunks when its request starts,
then one decode step for all running sequences at a time), doing what
MLC-LLM's calibration build does in every FP8 linear layer:

    s   = max(f16(max|x|) / 448, 1 / (448 * 512))     in float16
    run = max(run, s)                                  (the observer's running maximum)
    x   = f16(fp8(x / run)) * run                      (the activations, fake-quantized)
    y   = x @ (f16(fp8_weight) * q_scale)^T

and prints the final running maximum of each layer, "NAME VALUE", one per
line (NAME is the tensor-cache name, MODULE.q_calibration_scale). Written
from MLC-LLM's published calibration procedure and the llama architecture;
needs only numpy.
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
from mlc_convert_ref import fp8_encode, fp8_table  # noqa: E402

E4M3_MAX = 448.0


def fp8_decode_table():
    t = np.zeros(256, np.float32)
    for v, c in fp8_table("e4m3"):
        t[c], t[c | 0x80] = v, -v
    t[0x7F] = t[0xFF] = np.nan
    return t


DECODE = fp8_decode_table()


def load_cache(d):
    doc = json.load(open(os.path.join(d, "tensor-cache.json")))
    out = {}
    for shard in doc["records"]:
        raw = open(os.path.join(d, shard["dataPath"]), "rb").read()
        for r in shard["records"]:
            b = raw[r["byteOffset"]:r["byteOffset"] + r["nbytes"]]
            dt = r["dtype"]
            if dt == "float32":
                a = (np.frombuffer(b, np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif dt == "float16":
                a = np.frombuffer(b, np.float16).astype(np.float32)
            elif dt == "bfloat16":
                a = (np.frombuffer(b, np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif dt == "float8_e4m3fn":
                a = DECODE[np.frombuffer(b, np.uint8)]
            else:
                raise SystemExit("%s: dtype %s not handled" % (r["name"], dt))
            out[r["name"]] = a.reshape(r["shape"])
    return out


def f16(x):
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)


class Model:
    def __init__(self, d):
        cfg = json.load(open(os.path.join(d, "mlc-chat-config.json")))
        assert cfg["quantization"].endswith("_max_calibrate"), "not a calibration build"
        mc = cfg["model_config"]
        self.H = mc["hidden_size"]
        self.nh = mc["num_attention_heads"]
        self.nkv = mc["num_key_value_heads"]
        self.hd = mc.get("head_dim") or self.H // self.nh
        self.eps = mc["rms_norm_eps"]
        self.theta = mc.get("rope_theta", 10000.0)
        self.layers = mc["num_hidden_layers"]
        self.W = load_cache(d)
        self.run = {}
        self.order = []
        inv = 1.0 / (self.theta ** (np.arange(0, self.hd, 2, dtype=np.float64) / self.hd))
        self.inv = inv

    def weight(self, name):
        w = self.W.get(name + ".weight")
        if w is not None:
            return w
        # the calibration build dequantizes in float16: f16(fp8 * f16(q_scale))
        return f16(self.W[name + ".q_weight"] * f16(self.W[name + ".q_scale"][0]))

    def linear(self, name, x):
        """An FP8 linear layer of the calibration build."""
        m = np.float16(np.max(np.abs(x)))
        s = np.float16(np.float32(m) / np.float32(448.0))
        floor = np.float16(1.0 / (E4M3_MAX * 512.0))
        s = np.float32(max(s, floor))
        key = name + ".q_calibration_scale"
        if key not in self.run:
            self.order.append(key)
        self.run[key] = max(self.run.get(key, np.float32(0)), s)
        r = self.run[key]
        q = DECODE[fp8_encode((x / r).astype(np.float32), "e4m3").reshape(-1)].reshape(x.shape)
        return (q * r) @ self.weight(name).T

    def rms(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, v, pos):
        ang = np.outer(pos, self.inv)
        cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        half = self.hd // 2
        a, b = v[..., :half], v[..., half:]
        return np.concatenate([a * cos[:, None, :] - b * sin[:, None, :], b * cos[:, None, :] + a * sin[:, None, :]], -1)

    def forward(self, tokens, seqs, positions, cache):
        """One call: rows (token, sequence, position); updates the caches."""
        x = self.W["model.embed_tokens.weight"][np.array(tokens)]
        T = len(tokens)
        nq, nk, hd = self.nh, self.nkv, self.hd
        for layer in range(self.layers):
            p = "model.layers.%d." % layer
            h = self.rms(x, self.W[p + "input_layernorm.weight"])
            qkv = self.linear(p + "self_attn.qkv_proj", h)
            q = qkv[:, :nq * hd].reshape(T, nq, hd)
            k = qkv[:, nq * hd:(nq + nk) * hd].reshape(T, nk, hd)
            v = qkv[:, (nq + nk) * hd:].reshape(T, nk, hd)
            q, k = self.rope(q, positions), self.rope(k, positions)
            out = np.zeros((T, nq * hd), np.float32)
            for t in range(T):
                c = cache[seqs[t]][layer]
                c["k"].append(f16(k[t]))  # the KV cache holds the model's dtype
                c["v"].append(f16(v[t]))
            for t in range(T):
                c = cache[seqs[t]][layer]
                n = positions[t] + 1
                K, V = np.array(c["k"][:n]), np.array(c["v"][:n])
                for head in range(nq):
                    g = head // (nq // nk)
                    sc = K[:, g] @ q[t, head] / math.sqrt(hd)
                    w = np.exp(sc - sc.max())
                    out[t, head * hd:(head + 1) * hd] = (w / w.sum()) @ V[:, g]
            x = x + self.linear(p + "self_attn.o_proj", out)
            h = self.rms(x, self.W[p + "post_attention_layernorm.weight"])
            gu = self.linear(p + "mlp.gate_up_proj", h)
            I = gu.shape[1] // 2
            g, u = gu[:, :I], gu[:, I:]
            x = x + self.linear(p + "mlp.down_proj", g / (1 + np.exp(-g)) * u)


def main():
    d, rec_path = sys.argv[1], sys.argv[2]
    rec = json.load(open(rec_path))
    m = Model(d)
    width, chunk = rec["batch"], rec["prefill_chunk"]
    reqs = rec["requests"]
    caches = {}
    slots = [None] * width
    nxt = 0
    while True:
        for i in range(width):
            if slots[i] is None and nxt < len(reqs):
                ids = reqs[nxt]["prompt_ids"]
                caches[nxt] = [{"k": [], "v": []} for _ in range(m.layers)]
                for at in range(0, len(ids), chunk):
                    part = ids[at:at + chunk]
                    m.forward(part, [nxt] * len(part), list(range(at, at + len(part))), caches)
                slots[i] = [nxt, 0]
                nxt += 1
        batch = []
        for i in range(width):
            if slots[i] is None:
                continue
            r, k = slots[i]
            gen = reqs[r]["generated_ids"]
            slots[i][1] += 1
            if k == len(gen) - 1:
                slots[i] = None
            else:
                batch.append((r, gen[k]))
        if not batch:
            if nxt >= len(reqs):
                break
            continue
        pos = [len(caches[r][0]["k"]) for r, _ in batch]
        m.forward([t for _, t in batch], [r for r, _ in batch], pos, caches)
    for key in m.order:
        print("%s %.9g" % (key, m.run[key]))


if __name__ == "__main__":
    main()
