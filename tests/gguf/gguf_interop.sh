#!/usr/bin/env bash
# gguf_interop.sh: GGUF files written by src/gguf, read by an independent reader
# (tests/tools/gguf_read.py, Python standard library only), must describe exactly what the writer
# meant to write: every key, type and value in order, every tensor's type, dims, offset, size and
# the sha256 of its data. Run at the default alignment, 64 and 1.
# usage: gguf_interop.sh GGUF_SAMPLE_BINARY SOURCE_DIR TMP_DIR
set -euo pipefail
sample=$1 src=$2 tmp=$3
reader="$src/tests/tools/gguf_read.py"
mkdir -p "$tmp"
for align in 0 64 1; do
    f="$tmp/sample-$align.gguf"
    if [ "$align" = 0 ]; then "$sample" "$f" >"$tmp/want-$align.json"
    else "$sample" "$f" "$align" >"$tmp/want-$align.json"; fi
    python3 "$reader" "$f" >"$tmp/got-$align.json"
    python3 - "$tmp/want-$align.json" "$tmp/got-$align.json" <<'PY'
import json, sys
want = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
if want != got:
    for k in ("version", "alignment"):
        if want[k] != got[k]:
            print(f"{k}: want {want[k]} got {got[k]}")
    for a, b in zip(want["metadata"], got["metadata"]):
        if a != b:
            print(f"metadata differs:\n want {a}\n got  {b}")
    for a, b in zip(want["tensors"], got["tensors"]):
        if a != b:
            print(f"tensor differs:\n want {a}\n got  {b}")
    print(f"counts: metadata {len(want['metadata'])}/{len(got['metadata'])}, "
          f"tensors {len(want['tensors'])}/{len(got['tensors'])}")
    sys.exit(1)
print(f"ok: {len(got['metadata'])} keys, {len(got['tensors'])} tensors, alignment {got['alignment']}")
PY
done
# The reader must be able to say no: a truncated copy is refused.
head -c 300 "$tmp/sample-0.gguf" >"$tmp/cut.gguf"
if python3 "$reader" "$tmp/cut.gguf" >/dev/null 2>&1; then
    echo "gguf_read.py accepted a truncated file" >&2
    exit 1
fi
echo "gguf interop ok"
