#!/usr/bin/env bash
# Remakes the face fixtures of this folder (see README.md): the small test frames (PNG, made from
# the face-api demo pictures and lavfi by the ffmpeg CLI, deterministically) and the reference
# outputs (*.json) of tests/tools/face_reference.js on those frames and on sample1-6.jpg.
#   make_fixtures.sh MODULES_DIR [wasm|cpu [OUT_DIR]]
# MODULES_DIR: a folder where tests/tools/face-reference/package.json was installed (npm ci);
# the models come from $PERSONA_FACE_MODELS (default: data/models/face-api). The JSON goes to
# OUT_DIR (default: this folder; another one to compare backends without touching the fixtures).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
MODULES="${1:?usage: make_fixtures.sh MODULES_DIR [wasm|cpu [OUT_DIR]]}"
BACKEND="${2:-wasm}"
OUT="${3:-$HERE}"
M="${PERSONA_FACE_MODELS:-$ROOT/data/models/face-api}"

# png OUT FFMPEG-INPUT-ARGS...
png() { local out="$1"; shift; ffmpeg -v error -y "$@" -frames:v 1 -pred mixed "$out"; }
# One face (sample1's middle one), and the same face at half the size and in grey.
CROP="format=rgb24,crop=640:480:612:333"
png "$HERE/frame_face.png" -i "$M/sample1.jpg" -vf "$CROP,scale=320:240:flags=area"
png "$HERE/frame_face_half.png" -i "$M/sample1.jpg" -vf "$CROP,scale=160:120:flags=area"
png "$HERE/frame_grey.png" -i "$M/sample1.jpg" -vf "$CROP,scale=320:240:flags=area,format=gray"
# Taller than wide, odd sides, two faces: the other padding direction and the odd pixel.
png "$HERE/frame_portrait.png" -i "$M/sample6.jpg" -vf "format=rgb24,crop=720:960:300:250,scale=181:241:flags=area"
# No face: a colour gradient; and a picture far smaller than any network input.
png "$HERE/frame_noface.png" -f lavfi -i "nullsrc=s=320x240,format=rgb24,geq=r='X*255/W':g='Y*255/H':b='128'"
png "$HERE/frame_tiny.png" -i "$M/sample1.jpg" -vf "format=rgb24,scale=32:32:flags=area"

node "$ROOT/tests/tools/face_reference.js" --modules "$MODULES" --models "$M" --backend "$BACKEND" \
  --out "$OUT" "$M"/sample[1-6].jpg "$HERE"/frame_*.png
