#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF file the way another tool might, with nothing but
Python's standard library: keys in an unusual order (tokenizer first, architecture in the
middle), extra keys of several types, general.alignment = 64, a SentencePiece-style ("llama")
tokenizer with scores and <0xXX> byte tokens, F16 matrices and F32 norms that are not all ones,
tensors in an unusual order, and an untied output head.

Usage: write_gguf.py OUT.gguf [--seed N]
The shape is fixed (the unit test knows it): vocab 300, context 128, dim 64, 2 layers, 4 heads,
2 KV heads, ffn 128. Weights ~ N(0, 0.05) from random.Random(seed)."""
import random
import struct
import sys

VOCAB, CTX, DIM, LAYERS, HEADS, KV_HEADS, FFN = 300, 128, 64, 2, 4, 2, 128
ALIGN = 64
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
GGML_F32, GGML_F16 = 0, 1


def gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == T_ARR:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        for it in items:
            out += scalar(etype, it)
    else:
        out += scalar(vtype, value)
    return out


def scalar(vtype, v):
    fmt = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
           T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}
    if vtype == T_STR:
        return gstr(v)
    return struct.pack(fmt[vtype], v)


def vocab():
    """<unk>, <s>, </s>, 256 byte tokens, then word pieces with SentencePiece's U+2581 space."""
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        toks.append("<0x%02X>" % b)
        scores.append(0.0)
        types.append(6)
    words = ["\u2581the", "\u2581a", "\u2581hello", "\u2581world", "\u2581of", "\u2581and",
             "he", "ll", "o", "\u2581", "e", "t", "a", "h", "l", "w", "r", "d", "n", "s",
             "\u2581to", "\u2581in", "in", "er", "on", "an", "re", "at", "en", "es", "or",
             "\u00e9", "\u2581caf\u00e9", "ing", "\u2581is", "is", "it", "\u2581it", "ou", "\u2581you"]
    for i, w in enumerate(words):
        if len(toks) >= VOCAB:
            break
        toks.append(w)
        scores.append(-1.0 - i * 0.5)
        types.append(1)
    while len(toks) < VOCAB:
        toks.append("\u2581x%d" % len(toks))
        scores.append(-100.0 - len(toks))
        types.append(1)
    return toks, scores, types


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--seed" else 7
    rng = random.Random(seed)
    toks, scores, types = vocab()
    kd = DIM // HEADS * KV_HEADS

    kvs = [
        kv("tokenizer.ggml.model", T_STR, "llama"),
        kv("tokenizer.ggml.tokens", T_ARR, (T_STR, toks)),
        kv("tokenizer.ggml.scores", T_ARR, (T_F32, scores)),
        kv("tokenizer.ggml.token_type", T_ARR, (T_I32, types)),
        kv("tokenizer.ggml.bos_token_id", T_U32, 1),
        kv("tokenizer.ggml.eos_token_id", T_U32, 2),
        kv("tokenizer.ggml.unknown_token_id", T_U32, 0),
        kv("tokenizer.ggml.add_bos_token", T_BOOL, True),
        kv("general.alignment", T_U32, ALIGN),
        kv("llama.attention.layer_norm_rms_epsilon", T_F32, 1e-6),
        kv("general.architecture", T_STR, "llama"),
        kv("general.name", T_STR, "other-tool tiny"),
        kv("llama.block_count", T_U64, LAYERS),
        kv("llama.context_length", T_I32, CTX),
        kv("llama.embedding_length", T_U32, DIM),
        kv("llama.feed_forward_length", T_U32, FFN),
        kv("llama.attention.head_count", T_U32, HEADS),
        kv("llama.attention.head_count_kv", T_U32, KV_HEADS),
        kv("llama.rope.dimension_count", T_U32, DIM // HEADS),
        kv("llama.rope.freq_base", T_F32, 10000.0),
        kv("general.file_type", T_U32, 1),
        kv("general.license", T_STR, "none"),
        kv("vendor.some_floats", T_ARR, (T_F64, [1.5, -2.25])),
        kv("vendor.flag", T_BOOL, False),
        kv("vendor.small", T_I16, -3),
    ]

    def mat(n_in, n_out):
        vals = [rng.gauss(0.0, 0.05) for _ in range(n_in * n_out)]
        return GGML_F16, [n_in, n_out], struct.pack("<%de" % len(vals), *vals)

    def norm(n):
        vals = [1.0 + rng.uniform(-0.3, 0.3) for _ in range(n)]
        return GGML_F32, [n], struct.pack("<%df" % n, *vals)

    tensors = []
    for l in range(LAYERS):
        p = "blk.%d." % l
        tensors += [
            (p + "ffn_down.weight",) + mat(FFN, DIM),
            (p + "ffn_gate.weight",) + mat(DIM, FFN),
            (p + "ffn_up.weight",) + mat(DIM, FFN),
            (p + "attn_output.weight",) + mat(DIM, DIM),
            (p + "attn_v.weight",) + mat(DIM, kd),
            (p + "attn_k.weight",) + mat(DIM, kd),
            (p + "attn_q.weight",) + mat(DIM, DIM),
            (p + "ffn_norm.weight",) + norm(DIM),
            (p + "attn_norm.weight",) + norm(DIM),
        ]
    tensors += [("output.weight",) + mat(DIM, VOCAB), ("output_norm.weight",) + norm(DIM),
                ("token_embd.weight",) + mat(DIM, VOCAB)]

    infos, blobs, off = b"", b"", 0
    for name, ttype, ne, data in tensors:
        off = (off + ALIGN - 1) // ALIGN * ALIGN
        blobs += b"\0" * (off - len(blobs)) + data
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", ttype, off)
        off += len(data)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    pad = (len(head) + ALIGN - 1) // ALIGN * ALIGN - len(head)
    with open(path, "wb") as f:
        f.write(head + b"\0" * pad + blobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
