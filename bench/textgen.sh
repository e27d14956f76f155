#!/usr/bin/env bash
# bench/textgen.sh BUILD_DIR: the text engine's benchmarks (docs/benchmarks.md, "Text generation").
#   nn_bench     memory bandwidth, sgemm GFLOP/s, typed matvec/matmul at 1 and 2 threads
#   llm_bench    prompt processing (pp 128) and generation (tg 64) tokens/s, shapes A/B/C in
#                F32/F16/Q8_0/Q4_0 at 1 and 2 threads, like llama-bench
#   train_bench  training tokens/s and achieved GFLOP/s per preset at 1 and 2 threads
# Environment: TEXTGEN_SHAPES (A,B,C), TEXTGEN_TYPES (f32,f16,q8_0,q4_0), TEXTGEN_THREADS (1,2).
# Results: bench/out/textgen/{nn,llm,train}.txt and summary.txt. About 10 minutes on 2 cores.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/textgen.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"

D=$OUT_DIR/textgen
rm -rf "$D"; mkdir -p "$D"
for b in nn_bench llm_bench train_bench; do
    [ -x "$BUILD/bench/$b" ] || { echo "bench: $BUILD/bench/$b is missing; build first" >&2; exit 1; }
done
{
    echo "== kernels (nn_bench), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BUILD/bench/nn_bench"
} 2>&1 | tee "$D/nn.txt"
{
    echo "== inference (llm_bench), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BUILD/bench/llm_bench" --shapes "${TEXTGEN_SHAPES:-A,B,C}" \
        --types "${TEXTGEN_TYPES:-f32,f16,q8_0,q4_0}" --threads "${TEXTGEN_THREADS:-1,2}"
} 2>&1 | tee "$D/llm.txt"
{
    echo "== training (train_bench), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BUILD/bench/train_bench"
} 2>&1 | tee "$D/train.txt"
cat "$D/nn.txt" "$D/llm.txt" "$D/train.txt" > "$D/summary.txt"
