#!/usr/bin/env bash
# bench/asr.sh BUILD_DIR: speech recognition speed (src/asr) as x real time at 1 and 2 threads on
# the LibriVox clips of pocketsphinx-testdata and on a 10-minute recording (bench/asr_bench.c).
# Results: bench/out/asr/summary.txt. About 2 minutes on 2 cores.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/asr.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
D=$OUT_DIR/asr
rm -rf "$D"; mkdir -p "$D"
[ -x "$BUILD/bench/asr_bench" ] || { echo "bench: $BUILD/bench/asr_bench is missing; build first" >&2; exit 1; }
{
    echo "== speech recognition (asr_bench), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BUILD/bench/asr_bench" "${ASR_MINUTES:-10}"
} 2>&1 | tee "$D/summary.txt"
