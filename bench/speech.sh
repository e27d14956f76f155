#!/usr/bin/env bash
# bench/speech.sh BUILD_DIR: time from POST /v1/questions to the first audio sample written by a
# real persona-desktop (--out-dir: answer-<id>.wav), median of 20 (docs/benchmarks.md,
# "Question to speech"). Needs BUILD_DIR/persona-desktop. Results: bench/out/speech/results.txt.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/speech.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
[ -x "$BUILD/persona-desktop" ] || { echo "bench: $BUILD/persona-desktop is missing; skipped" >&2; exit 0; }
D=$OUT_DIR/speech
rm -rf "$D"; mkdir -p "$D/wav"
DESK_PID=
cleanup() {
    [ -n "$DESK_PID" ] && { kill "$DESK_PID" 2>/dev/null; wait "$DESK_PID" 2>/dev/null; } || true
    bench_personad_stop
}
trap cleanup EXIT
DATA=$OUT_DIR/data-speech; rm -rf "$DATA" "$DATA.stdout"
bench_personad_start "$BUILD" "$DATA" "$D/personad.log"
TOKEN=$(bench_token "$PERSONAD_URL")
DEV=$(curl -sf -X POST "$PERSONAD_URL/v1/devices" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"name":"speaker","kind":"desktop"}' | bench_json token)
printf '%s\n\n' "The sea was grey and cold that morning, and we walked along the shore until the rain came." \
    "My grandmother kept a garden with roses and tomatoes behind the old house." \
    "The river froze every winter and we skated on it after school." \
    "I played music every evening, mostly old songs my father taught me." |
    curl -sf -X POST "$PERSONAD_URL/v1/media?title=memories" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: text/plain' --data-binary @- >/dev/null
"$BUILD/persona-desktop" --server "$PERSONAD_URL" --token "$DEV" --out-dir "$D/wav" \
    --state "$D/desktop-state" > "$D/desktop.log" 2>&1 &
DESK_PID=$!
sleep 1
python3 "$BENCH_DIR/speech.py" --url "$PERSONAD_URL" --token "$TOKEN" --out-dir "$D/wav" \
    --count "${SPEECH_COUNT:-20}" | tee "$D/results.txt"
cp "$D/results.txt" "$D/summary.txt"
