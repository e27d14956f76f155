#!/usr/bin/env python3
"""gguf_read.py: an independent GGUF reader (Python standard library only), written from the
format's specification (ggml docs/gguf.md) rather than from src/gguf, so that tests can check the
files persona writes with a second implementation.

usage: gguf_read.py FILE.gguf [--no-data]

Prints one JSON object:
  {"version": 3, "alignment": 32,
   "metadata": [{"key": K, "type": T, "value": V}, ...],            # in file order
   "tensors": [{"name": N, "type": nn/ggml type id, "dims": [ne0, ...], "offset": relative offset,
                "size": bytes, "sha256": hex of the data}, ...]}
Types are u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64; an array's value is
{"type": element type, "items": [...]}. Strings are JSON strings when they are UTF-8 without NUL,
else {"hex": "..."}. Exits 1 with a message on stderr for a file it cannot read.
"""
import hashlib
import json
import mmap
import os
import struct
import sys

VTYPES = {
    0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"),
    4: ("u32", "<I"), 5: ("i32", "<i"), 6: ("f32", "<f"), 7: ("bool", "<B"),
    8: ("string", None), 9: ("array", None), 10: ("u64", "<Q"), 11: ("i64", "<q"),
    12: ("f64", "<d"),
}
# ggml tensor types this project uses: (elements per block, bytes per block)
TTYPES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34)}


class Bad(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.d = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.d):
            raise Bad(f"truncated at byte {self.pos} (need {n} bytes)")
        b = self.d[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.unpack("<Q")
        return self.take(n)


def show_str(b):
    if b"\0" not in b:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"hex": b.hex()}


def scalar(r, t):
    name, fmt = VTYPES[t]
    v = r.unpack(fmt)
    if name == "bool":
        if v > 1:
            raise Bad(f"bool value {v}")
        return bool(v)
    return v


def value(r, t):
    if t not in VTYPES:
        raise Bad(f"unknown value type {t}")
    if t == 8:
        return show_str(r.string())
    if t == 9:
        et = r.unpack("<I")
        n = r.unpack("<Q")
        if et not in VTYPES or et == 9:
            raise Bad(f"bad array element type {et}")
        if n > len(r.d):
            raise Bad(f"array length {n} larger than the file")
        items = [value(r, et) for _ in range(n)]
        return {"type": VTYPES[et][0], "items": items}
    return scalar(r, t)


def read(data, with_data=True):
    r = Reader(data)
    if r.take(4) != b"GGUF":
        raise Bad("bad magic")
    version = r.unpack("<I")
    if version not in (2, 3):
        raise Bad(f"unsupported version {version}")
    n_tensors = r.unpack("<Q")
    n_kv = r.unpack("<Q")
    if n_tensors > len(data) or n_kv > len(data):
        raise Bad("counts larger than the file")
    meta = []
    alignment = 32
    for _ in range(n_kv):
        key = r.string().decode("utf-8")
        t = r.unpack("<I")
        v = value(r, t)
        if key == "general.alignment":
            if t != 4 or v == 0 or v & (v - 1):
                raise Bad("general.alignment must be a u32 power of two")
            alignment = v
        meta.append({"key": key, "type": VTYPES[t][0], "value": v})
    infos = []
    for _ in range(n_tensors):
        name = r.string().decode("utf-8")
        n_dims = r.unpack("<I")
        if not 1 <= n_dims <= 4:
            raise Bad(f"tensor {name}: {n_dims} dims")
        dims = [r.unpack("<Q") for _ in range(n_dims)]
        ttype = r.unpack("<I")
        offset = r.unpack("<Q")
        if ttype not in TTYPES:
            raise Bad(f"tensor {name}: unknown type {ttype}")
        be, bb = TTYPES[ttype]
        if dims[0] % be:
            raise Bad(f"tensor {name}: row not whole blocks")
        n = 1
        for x in dims:
            n *= x
        infos.append((name, ttype, dims, offset, n // be * bb))
    start = (r.pos + alignment - 1) // alignment * alignment
    tensors = []
    spans = []
    for name, ttype, dims, offset, size in infos:
        if offset % alignment:
            raise Bad(f"tensor {name}: misaligned offset {offset}")
        if start + offset + size > len(data):
            raise Bad(f"tensor {name}: data past the end of the file")
        spans.append((offset, offset + size, name))
        t = {"name": name, "type": ttype, "dims": dims, "offset": offset, "size": size}
        if with_data:
            t["sha256"] = hashlib.sha256(data[start + offset:start + offset + size]).hexdigest()
        tensors.append(t)
    spans.sort()
    for a, b in zip(spans, spans[1:]):
        if a[1] > b[0]:
            raise Bad(f"tensors {a[2]} and {b[2]} overlap")
    return {"version": version, "metadata": meta, "tensors": tensors, "alignment": alignment}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    with open(args[0], "rb") as f:
        # mapped, not read: model files can be gigabytes
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
        try:
            out = read(data, "--no-data" not in sys.argv)
        except (Bad, UnicodeDecodeError) as e:
            print(f"gguf_read.py: {args[0]}: {e}", file=sys.stderr)
            return 1
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
