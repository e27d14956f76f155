#!/usr/bin/env python3
"""tok_reference.py: checks src/tok (through tests/tok/tok_tool) against reference
implementations written here in Python with the standard library only:

1. the pre-tokenizer against GPT-2's regular expression, run by Python's backtracking `re` engine
   with \\p{L}, \\p{N} and \\s spelled out as explicit classes from unicodedata and Unicode's
   White_Space list, on thousands of random strings mixing every character class;
2. BPE training against a naive trainer (recount every pair after every merge; ties to the pair
   whose left, then right token's bytes sort first): the same tokens and merges, in order;
3. encoding against GPT-2's own bpe() (encoder.py: merge every occurrence of the lowest-ranked
   pair, repeat), using the vocabulary and merges read back from the GGUF file with
   tests/tools/gguf_read.py: the same ids;
4. SentencePiece-style encoding against llama.cpp's algorithm written naively (recompute the
   best adjacent pair after every merge) on a vocabulary written to GGUF here.

usage: tok_reference.py TOK_TOOL SOURCE_DIR TMP_DIR
"""
import os
import random
import re
import struct
import subprocess
import sys
import unicodedata
from collections import Counter

tool, src, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.join(src, "tests", "tools"))
import gguf_read  # noqa: E402

os.makedirs(tmp, exist_ok=True)

# ---- GPT-2's pattern with explicit classes ------------------------------------------------
WHITE_SPACE = ([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] +
               list(range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


def class_of(cats):
    out, start, prev = [], None, None
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)) in cats:
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            out.append((start, prev))
            start = None
    if start is not None:
        out.append((start, prev))
    return "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in out)


L = class_of({"Lu", "Ll", "Lt", "Lm", "Lo"})
N = class_of({"Nd", "Nl", "No"})
S = "".join(f"\\U{c:08X}" for c in WHITE_SPACE)
PAT = re.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+")


# Llama 3's and Qwen2's patterns (llama.cpp's), case-insensitive contractions spelled out
CONTR = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"
LLAMA3 = re.compile(rf"{CONTR}|[^\r\n{L}{N}]?[{L}]+|[{N}]{{1,3}}| ?[^{S}{L}{N}]+[\r\n]*|"
                    rf"[{S}]*[\r\n]+|[{S}]+(?![^{S}])|[{S}]+")
QWEN2 = re.compile(rf"{CONTR}|[^\r\n{L}{N}]?[{L}]+|[{N}]| ?[^{S}{L}{N}]+[\r\n]*|"
                   rf"[{S}]*[\r\n]+|[{S}]+(?![^{S}])|[{S}]+")


def pretok(text):
    pieces = PAT.findall(text)
    assert "".join(pieces) == text
    return pieces


def records(texts):
    return b"".join(struct.pack("<I", len(t)) + t for t in texts)


def run(args, data=None):
    r = subprocess.run([tool] + args, input=data, capture_output=True, check=False)
    if r.returncode != 0:
        sys.exit(f"tok_tool {args[0]} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode().split("\n")[:-1]


failures = 0


def fail(msg):
    global failures
    failures += 1
    if failures <= 10:
        print("FAIL:", msg)


# ---- 1. pre-tokenizer --------------------------------------------------------------------
POOL = (list("abcXYZ") + list("0189") + list(".,!?$-_()'\"") + ["'s", "'t", "'re", "'ve", "'m",
        "'ll", "'d", "'S"] + [" "] * 6 + ["\t", "\n", "\r", "\x0b", "\x0c", "\x00", "\x1c",
        "\x7f", "\u0085", "\u00a0", "\u1680", "\u2003", "\u2028", "\u202f", "\u3000",
        "\u200b", "\u2581", "Ж", "я", "ё", "中", "文", "한", "ア", "ع", "ر", "\u0663", "\u2167",
        "\u00bd", "\u00b2", "\u0301", "\u200d", "😀", "🏽", "€", "ß", "ǅ", "ʰ", "\U00020000",
        "\U0001D7D8", "\ufffd", "\U0010ffff", "\ud7ff", "\ue000"])
rng = random.Random(1234)
texts = ["".join(rng.choice(POOL) for _ in range(rng.randrange(0, 40))) for _ in range(4000)]
texts += ["Hello world", "I'm can't we've", "a \n\n b", "x  ", "\t\tx", " $3.50, ok"]
texts += ["Hello WORLD'S 12345 x\r\n\n  y", "!!hello .x \t\tz", "  \n  x", "a\n\n", "'LL 'Re"]
for name, pat in (("gpt2", PAT), ("llama3", LLAMA3), ("qwen2", QWEN2)):
    got = run(["split", name], records([t.encode() for t in texts]))
    assert len(got) == len(texts)
    for t, line in zip(texts, got):
        pieces = pat.findall(t)
        assert "".join(pieces) == t
        want = [len(p.encode()) for p in pieces]
        have = [int(x) for x in line.split()] if line else []
        if want != have:
            fail(f"{name} split of {t!r}: want {want} have {have}")
    print(f"pre-tokenizer {name}: {len(texts)} strings compared")

# ---- 2. training -------------------------------------------------------------------------
# English prose: Debian's copy of the GPL when present, else this repository's README
corpus_files = [p for p in ["/usr/share/common-licenses/GPL-3", os.path.join(src, "README.md")]
                if os.path.exists(p)][:1]
sample = os.path.join(tmp, "scripts.txt")
with open(sample, "w", encoding="utf-8") as f:
    f.write("Съешь же ещё этих мягких французских булок. 日本語のテキスト。 مرحبا بالعالم ١٢٣ 😀😀 " * 20)
corpus_files.append(sample)
VOCAB = 600
model = os.path.join(tmp, "ref.gguf")
run(["train", str(VOCAB), model] + corpus_files)
with open(model, "rb") as f:
    meta = {m["key"]: m["value"] for m in gguf_read.read(f.read(), False)["metadata"]}
g_tokens = meta["tokenizer.ggml.tokens"]["items"]
g_merges = meta["tokenizer.ggml.merges"]["items"]

BYTE_CP = {}
n = 0
for b in range(256):
    if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255:
        BYTE_CP[b] = chr(b)
    else:
        BYTE_CP[b] = chr(256 + n)
        n += 1


def bl(bs):
    return "".join(BYTE_CP[b] for b in bs)


words = Counter()
for p in corpus_files:
    with open(p, encoding="utf-8") as f:
        for w in pretok(f.read()):
            wb = w.encode()
            if len(wb) >= 2:
                words[wb] += 1
tokens = [bytes([b]) for b in range(256)]
index = {t: i for i, t in enumerate(tokens)}
seqs = {w: list(w) for w in words}
merges = []
while len(tokens) < VOCAB - 3:
    counts = Counter()
    for w, fq in words.items():
        s = seqs[w]
        for a, b in zip(s, s[1:]):
            counts[(a, b)] += fq
    if not counts:
        break
    a, b = min(counts, key=lambda p: (-counts[p], tokens[p[0]], tokens[p[1]]))
    new = tokens[a] + tokens[b]
    c = index.get(new)
    if c is None:
        c = len(tokens)
        tokens.append(new)
        index[new] = c
    merges.append(f"{bl(tokens[a])} {bl(tokens[b])}")
    for w in words:
        s, out, i = seqs[w], [], 0
        while i < len(s):
            if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                out.append(c)
                i += 2
            else:
                out.append(s[i])
                i += 1
        seqs[w] = out
want_tokens = [bl(t) for t in tokens] + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
if g_tokens != want_tokens:
    fail(f"trained tokens differ ({len(g_tokens)} vs {len(want_tokens)}); first difference at "
         f"{next((i for i, (x, y) in enumerate(zip(g_tokens, want_tokens)) if x != y), None)}")
if g_merges != merges:
    i = next((i for i, (x, y) in enumerate(zip(g_merges, merges)) if x != y), None)
    fail(f"merges differ ({len(g_merges)} vs {len(merges)}); first at {i}: "
         f"{g_merges[i] if i is not None else ''!r} vs {merges[i] if i is not None else ''!r}")
print(f"training: {len(merges)} merges compared")

# ---- 3. encoding -------------------------------------------------------------------------
ranks = {tuple(m.split(" ", 1)): r for r, m in enumerate(g_merges)}
vocab = {}
for i, t in enumerate(g_tokens):
    vocab.setdefault(t, i)


def bpe(word):
    word = tuple(word)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                out.append(first + second)
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = tuple(out)
    return word


def encode(text):
    ids = []
    for w in pretok(text):
        ids += [vocab[p] for p in bpe(bl(w.encode()))]
    return ids


enc_texts = []
for p in corpus_files:
    with open(p, encoding="utf-8") as f:
        data = f.read()
    enc_texts += [data[i:i + 2000] for i in range(0, min(len(data), 40000), 2000)]
enc_texts += texts[:2000]
# whole files too: inputs of 4 KiB and more go through the encoder's per-call word cache
for p in corpus_files:
    with open(p, encoding="utf-8") as f:
        enc_texts.append(f.read())
enc_texts.append(" ".join(texts[:3000]))
got = run(["encode", model], records([t.encode() for t in enc_texts]))
for t, line in zip(enc_texts, got):
    have = [int(x) for x in line.split()] if line else []
    want = encode(t)
    if want != have:
        fail(f"encoding of {t[:60]!r}: want {want[:12]}... have {have[:12]}...")
print(f"encoding: {len(enc_texts)} texts compared")

# ---- 4. SentencePiece-style encoding ---------------------------------------------------------
# A vocabulary from the trained one (byte-level texts that are UTF-8, spaces as U+2581), scores
# in rank order with ties every three tokens, written as GGUF here; then llama.cpp's algorithm
# (best-scoring adjacent pair that is a normal token, leftmost on ties, until none; byte
# fallback) with persona's departures: a literal U+2581 stays bytes, an escaped space with no
# token is <0x20>.
ESC = "\u2581"
spm_tokens, spm_types, spm_scores = ["<unk>", "<s>", "</s>"], [2, 3, 3], [0.0, 0.0, 0.0]
for b in range(256):
    spm_tokens.append(f"<0x{b:02X}>")
    spm_types.append(6)
    spm_scores.append(0.0)
seen = set()
for rank, t in enumerate(g_tokens[256:-3]):
    try:
        text = bytes(next(k for k, v in BYTE_CP.items() if v == c) for c in t).decode("utf-8")
    except UnicodeDecodeError:
        continue
    text = text.replace(" ", ESC)
    if text in seen or len(text) < 2:
        continue
    seen.add(text)
    spm_tokens.append(text)
    spm_types.append(1)
    spm_scores.append(-float(rank // 3))
for ch in "abcdefghijklmnopqrstuvwxyz" + ESC + "еиоа":
    if ch not in seen:
        seen.add(ch)
        spm_tokens.append(ch)
        spm_types.append(1)
        spm_scores.append(-1000.0)


def gguf_kv(key, vtype, value):
    def gstr(x):
        x = x.encode() if isinstance(x, str) else x
        return struct.pack("<Q", len(x)) + x
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == 8:
        return out + gstr(value)
    if vtype == 4:
        return out + struct.pack("<I", value)
    etype, items = value
    out += struct.pack("<IQ", etype, len(items))
    for it in items:
        out += gstr(it) if etype == 8 else struct.pack({5: "<i", 6: "<f"}[etype], it)
    return out


kvs = [gguf_kv("tokenizer.ggml.model", 8, "llama"),
       gguf_kv("tokenizer.ggml.tokens", 9, (8, spm_tokens)),
       gguf_kv("tokenizer.ggml.scores", 9, (6, spm_scores)),
       gguf_kv("tokenizer.ggml.token_type", 9, (5, spm_types)),
       gguf_kv("tokenizer.ggml.bos_token_id", 4, 1)]
spm_path = os.path.join(tmp, "spm.gguf")
with open(spm_path, "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))

spm_id = {}
for i, t in enumerate(spm_tokens):
    if spm_types[i] == 1:
        spm_id.setdefault(t, i)


def spm_encode(text):
    syms = [(ESC, 1)]  # (text, kind): 0 plain, 1 escaped space, 2 literal U+2581
    for ch in text:
        syms.append((ESC, 1) if ch == " " else (ch, 2) if ch == ESC else (ch, 0))
    syms = [[t, k, i] for i, (t, k) in enumerate(syms)]  # i: position of the first character
    while True:
        best = None
        for j in range(len(syms) - 1):
            a, b = syms[j], syms[j + 1]
            if a[1] == 2 or b[1] == 2:
                continue
            tid = spm_id.get(a[0] + b[0])
            if tid is None:
                continue
            key = (-spm_scores[tid], a[2])
            if best is None or key < best[0]:
                best = (key, j)
        if best is None:
            break
        j = best[1]
        syms[j] = [syms[j][0] + syms[j + 1][0], syms[j][1], syms[j][2]]
        del syms[j + 1]
    ids = []
    for t, k, _ in syms:
        if k != 2 and t in spm_id:
            ids.append(spm_id[t])
        elif k == 1 and t == ESC:
            ids.append(3 + 0x20)
        else:
            ids += [3 + b for b in t.encode()]
    return ids


spm_texts = [t[:300] for t in enc_texts[:400]] + texts[:1500] + [ESC + " a" + ESC + ESC, "  ", ""]
got = run(["encode", spm_path], records([t.encode() for t in spm_texts]))
for t, line in zip(spm_texts, got):
    have = [int(x) for x in line.split()] if line else []
    want = spm_encode(t) if t else []
    if want != have:
        fail(f"SPM encoding of {t[:60]!r}: want {want[:12]}... have {have[:12]}...")
print(f"SPM encoding: {len(spm_texts)} texts compared ({len(spm_tokens)} tokens)")

if failures:
    sys.exit(f"{failures} differences")
print("tok reference ok")
