#!/usr/bin/python3
"""Write a small synthetic pre-converted MLC repository, for mlc-fetch's tests.

    mkmlc.py OUT [--shards N] [--shard-bytes N] [--old-name] [--tokenizer DIR]

Writes OUT/mlc-chat-config.json, OUT/tensor-cache.json (or, with --old-name,
ndarray-cache.json as MLC wrote before late 2025) and OUT/params_shard_K.bin,
in the schema TVM's dump_tensor_cache writes (indent 4, md5sum of each shard),
with deterministic bytes. --tokenizer copies tokenizer.json and
tokenizer.model (when present) from DIR. The weights are not a real model;
they only have to be consistent with the tensor cache.
"""
import argparse
import hashlib
import json
import os
import shutil


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--shard-bytes", type=int, default=40000)
    p.add_argument("--old-name", action="store_true")
    p.add_argument("--tokenizer")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    config = {"version": "0.1.0", "model_type": "llama", "quantization": "q4f16_1",
              "model_config": {"hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 512},
              "vocab_size": 512, "context_window_size": 256, "prefill_chunk_size": 256,
              "conv_template": {"name": "LM"}, "tokenizer_files": ["tokenizer.json"]}
    with open(os.path.join(a.out, "mlc-chat-config.json"), "w") as f:
        json.dump(config, f, indent=2)
    records = []
    for k in range(a.shards):
        name = "params_shard_%d.bin" % k
        data = bytes((i * 7 + k * 13) & 0xFF for i in range(a.shard_bytes))
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(data)
        half = a.shard_bytes // 2
        tensors = [
            {"name": "layer%d.q_weight" % k, "shape": [half // 4], "dtype": "uint32",
             "format": "f32-to-bf16", "nbytes": half, "byteOffset": 0},
            {"name": "layer%d.q_scale" % k, "shape": [(a.shard_bytes - half) // 2],
             "dtype": "float16", "format": "f32-to-bf16", "nbytes": a.shard_bytes - half,
             "byteOffset": half},
        ]
        records.append({"dataPath": name, "format": "raw-shard", "nbytes": len(data),
                        "records": tensors, "md5sum": hashlib.md5(data).hexdigest()})
    cache = {"metadata": {"ParamSize": 2 * a.shards, "ParamBytes": float(a.shards * a.shard_bytes),
                          "BitsPerParam": 4.5}, "records": records}
    name = "ndarray-cache.json" if a.old_name else "tensor-cache.json"
    with open(os.path.join(a.out, name), "w") as f:
        json.dump(cache, f, indent=4)
    if a.tokenizer:
        for t in ("tokenizer.json", "tokenizer.model"):
            src = os.path.join(a.tokenizer, t)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(a.out, t))


if __name__ == "__main__":
    main()
