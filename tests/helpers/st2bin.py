#!/usr/bin/python3
"""Write a model directory's safetensors weights as PyTorch checkpoints.

    st2bin.py DIR [--shards N]

Reads DIR/model.safetensors (or the shards listed in
model.safetensors.index.json) and writes DIR/pytorch_model.bin with
torch.save, or with --shards N the files pytorch_model-0000K-of-0000N.bin and
pytorch_model.bin.index.json, as transformers' save_pretrained would. The
tensors keep their names, order, dtypes and values, so a converter must give
identical results from either format. Needs Debian's python3-torch.
"""
import json
import os
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
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
        out[name] = t.reshape(info["shape"]).clone()
    return out


def main():
    d = sys.argv[1]
    shards = 1
    if len(sys.argv) > 3 and sys.argv[2] == "--shards":
        shards = int(sys.argv[3])
    index_path = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index_path):
        files = []
        for f in json.load(open(index_path))["weight_map"].values():
            if f not in files:
                files.append(f)
    else:
        files = ["model.safetensors"]
    tensors = {}
    for f in files:
        tensors.update(read_safetensors(os.path.join(d, f)))
    names = sorted(tensors)
    if shards == 1:
        torch.save({k: tensors[k] for k in names}, os.path.join(d, "pytorch_model.bin"))
        return
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    per = (total + shards - 1) // shards
    groups = [[] for _ in range(shards)]
    acc = 0
    for k in names:
        groups[min(acc // per, shards - 1)].append(k)
        acc += tensors[k].numel() * tensors[k].element_size()
    weight_map = {}
    for i, group in enumerate(groups):
        fname = "pytorch_model-%05d-of-%05d.bin" % (i + 1, shards)
        torch.save({k: tensors[k] for k in group}, os.path.join(d, fname))
        for k in group:
            weight_map[k] = fname
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
