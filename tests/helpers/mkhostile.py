#!/usr/bin/python3
"""Write small hostile inputs, each the minimal reproducer of a way a parser
once failed: a crash, a leak, unbounded CPU or memory.

    mkhostile.py KIND OUT

KIND is one of:
  config-record    a 21-byte stream: one `config` record with an empty map
                   and neither `path` nor `dir`
  deep-nesting     a record nesting arrays 1,000,000 deep
  huge-array       a record whose array header declares 2^32-1 elements
  pickle-list      pytorch_model.bin whose data.pkl is `]` then `Na` x 2M
                   (a list of 2M None: 4 MB of pickle, 24 KB zipped)
  storage-bomb     pytorch_model.bin with a 64-element float tensor backed by
                   a 64 MiB storage (zeros: 64 KB zipped)
  storage-view     pytorch_model.bin whose tensor `w` is the last 64 elements
                   of a 96-element storage (a view torch.save keeps whole)
  st-overflow      model.safetensors whose shape times dtype size passes 2^64
Only the standard library is used: pickles are written opcode by opcode.
"""
import struct
import sys
import zipfile


def pack_str(s):
    b = s.encode()
    assert len(b) < 32
    return bytes([0xA0 | len(b)]) + b


def bin_unicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def tensor_pickle(name, storage_key, storage_numel, offset, size):
    """A protocol-2 state_dict {name: tensor} as torch.save writes it."""
    p = b"\x80\x02" + b"ccollections\nOrderedDict\n)R"
    p += bin_unicode(name)
    p += b"ctorch._utils\n_rebuild_tensor_v2\n"
    p += b"("
    # persistent id ('storage', FloatStorage, key, 'cpu', numel)
    p += b"(" + bin_unicode("storage") + b"ctorch\nFloatStorage\n" + bin_unicode(storage_key)
    p += bin_unicode("cpu") + b"J" + struct.pack("<i", storage_numel) + b"tQ"
    p += b"J" + struct.pack("<i", offset)
    p += b"J" + struct.pack("<i", size) + b"\x85"   # size (n,)
    p += b"K\x01\x85"                                # stride (1,)
    p += b"\x89" + b"ccollections\nOrderedDict\n)R"  # requires_grad, hooks
    p += b"tR"
    p += b"s."
    return p


def write_bin(out, pickle, storages):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", pickle)
        for key, data in storages.items():
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", "3\n")


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "config-record":
        data = b"\x82" + pack_str("type") + pack_str("config") + pack_str("config") + b"\x80"
        assert len(data) == 21
        open(out, "wb").write(data)
    elif kind == "deep-nesting":
        open(out, "wb").write(b"\x81" + pack_str("type") + b"\x91" * 1000000 + b"\xc0")
    elif kind == "huge-array":
        open(out, "wb").write(b"\x82" + pack_str("type") + pack_str("x") + pack_str("a") + b"\xdd\xff\xff\xff\xff")
    elif kind == "pickle-list":
        write_bin(out, b"\x80\x02]" + b"Na" * 2000000 + b".", {})
    elif kind == "storage-bomb":
        write_bin(out, tensor_pickle("w", "0", 16 << 20, 0, 64), {"0": bytes(64 << 20)})
    elif kind == "storage-view":
        data = b"".join(struct.pack("<f", float(i)) for i in range(96))
        write_bin(out, tensor_pickle("w", "0", 96, 32, 64), {"0": data})
    elif kind == "st-overflow":
        header = b'{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}'
        open(out, "wb").write(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    else:
        sys.exit("mkhostile.py: unknown kind " + kind)


main()
