#!/usr/bin/env bash
# bench/tts.sh BUILD_DIR: speech synthesis (espeak-ng) and Opus encoding speed as x real time
# (bench/tts_bench.c). Results: bench/out/tts/summary.txt. About 10 seconds.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/tts.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
D=$OUT_DIR/tts
rm -rf "$D"; mkdir -p "$D"
[ -x "$BUILD/bench/tts_bench" ] || { echo "bench: $BUILD/bench/tts_bench is missing; build first" >&2; exit 1; }
{
    echo "== speech synthesis (tts_bench), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BUILD/bench/tts_bench" "${TTS_ROUNDS:-20}"
} 2>&1 | tee "$D/summary.txt"
