#!/usr/bin/python3
"""An independent model of updating an MLC tensor cache the way TVM's
dump_tensor_cache(..., encode_format="f32-to-bf16", update_if_exists=True)
does it (what MLC-LLM's calibrate uses to save its scales), written from
TVM's documented behaviour:

  - the existing tensor-cache.json is loaded; its metadata and shard list
    are kept as they are;
  - a name already present is overwritten at its byteOffset in its shard
    (same size required) and that shard's md5sum recomputed;
  - new names are packed into new shards numbered after the existing ones
    (a tensor that does not fit goes alone into a shard when it is at least
    half the cap, otherwise the pending shard is closed first);
  - float32 values are stored as bf16 (round to nearest even inside the
    bf16 range, truncated outside it); tensor-cache.json is rewritten with
    json.dump(indent=4), and tensor-cache-b16.json beside it with every
    float32 record described as bfloat16 "raw".

Usage: tc_update_ref.py DIR NAME=V[,V...] ...   (edits DIR in place)
"""
import hashlib
import json
import os
import sys

import numpy as np

CAP = 32 << 20


def f32_to_bf16(values):
    v = np.asarray(values, dtype=np.float32)
    bits = v.view(np.uint32).astype(np.uint64)
    limit = np.float32(np.frombuffer(np.uint32(0x7F7F0000).tobytes(), dtype=np.float32)[0])
    inside = (v < limit) & (v > -limit)
    bias = np.where(inside, ((bits >> 16) & 1) + 0x7FFF, 0)
    return (((bits + bias) & 0xFFFFFFFF) >> 16).astype(np.uint16).tobytes()


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def main():
    cache_dir = sys.argv[1]
    updates = []
    for arg in sys.argv[2:]:
        name, vals = arg.split("=", 1)
        updates.append((name, [float(x) for x in vals.split(",")]))
    path = os.path.join(cache_dir, "tensor-cache.json")
    with open(path) as f:
        doc = json.load(f)
    shards = doc["records"]
    where = {}
    for i, shard in enumerate(shards):
        for rec in shard["records"]:
            where[rec["name"]] = (i, rec)
    touched = set()
    pending, pending_data = [], bytearray()
    counter = len(shards)

    def commit(data, recs):
        nonlocal counter
        name = "params_shard_%d.bin" % counter
        counter += 1
        with open(os.path.join(cache_dir, name), "wb") as f:
            f.write(data)
        shards.append({"dataPath": name, "format": "raw-shard", "nbytes": len(data),
                       "records": recs, "md5sum": hashlib.md5(bytes(data)).hexdigest()})

    for name, vals in updates:
        data = f32_to_bf16(vals)
        rec = {"name": name, "shape": [len(vals)], "dtype": "float32", "format": "f32-to-bf16",
               "nbytes": len(data)}
        if name in where:
            idx, old = where[name]
            assert old["nbytes"] == len(data)
            with open(os.path.join(cache_dir, shards[idx]["dataPath"]), "r+b") as f:
                f.seek(old["byteOffset"])
                f.write(data)
            touched.add(idx)
            continue
        where[name] = (None, rec)
        if len(pending_data) + len(data) >= CAP:
            if 2 * len(data) >= CAP:
                rec["byteOffset"] = 0
                commit(data, [rec])
                continue
            commit(pending_data, pending)
            pending, pending_data = [], bytearray()
        rec["byteOffset"] = len(pending_data)
        pending.append(rec)
        pending_data += data
    if pending:
        commit(pending_data, pending)
    for idx in touched:
        shards[idx]["md5sum"] = md5(os.path.join(cache_dir, shards[idx]["dataPath"]))
    with open(path, "w") as f:
        json.dump(doc, f, indent=4)
    for shard in shards:
        for rec in shard["records"]:
            if rec["dtype"] == "float32":
                rec["format"] = "raw"
                rec["dtype"] = "bfloat16"
    with open(os.path.join(cache_dir, "tensor-cache-b16.json"), "w") as f:
        json.dump(doc, f, indent=4)


if __name__ == "__main__":
    main()
