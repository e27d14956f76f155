#!/usr/bin/env bash
# bench/questions.sh BUILD_DIR: question throughput on a 100,000-passage corpus
# (docs/benchmarks.md, "Questions"). A fresh personad; bench/questions.py inserts 200 text items
# of 500 paragraphs (pseudo-English, fixed seed), then asks questions 4 at a time for 15 s and
# reports answers/s and p50/p99 POST-to-answer.done latency, then the server's own timings.
# Environment: QUESTIONS_ITEMS (200), QUESTIONS_PARAGRAPHS (500), QUESTIONS_CONCURRENCY (4),
# QUESTIONS_DURATION (15). Results: bench/out/questions/results.txt.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/questions.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
bench_need_pkgs curl python3

D=$OUT_DIR/questions
rm -rf "$D"; mkdir -p "$D"
trap bench_personad_stop EXIT
DATA=$OUT_DIR/data-questions; rm -rf "$DATA" "$DATA.stdout"
bench_personad_start "$BUILD" "$DATA" "$D/personad.log"
TOKEN=$(bench_token "$PERSONAD_URL")
python3 "$BENCH_DIR/questions.py" --url "$PERSONAD_URL" --token "$TOKEN" \
    --items "${QUESTIONS_ITEMS:-200}" --paragraphs "${QUESTIONS_PARAGRAPHS:-500}" \
    --concurrency "${QUESTIONS_CONCURRENCY:-4}" --duration "${QUESTIONS_DURATION:-15}" \
    | tee "$D/results.txt"
echo "db_size_mib $(du -sm "$DATA" | cut -f1)" | tee -a "$D/results.txt"
cp "$D/results.txt" "$D/summary.txt"
