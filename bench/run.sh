#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: every benchmark of docs/benchmarks.md, one after the other (`make bench`).
#   bench/http.sh      wrk on personad, Flask-SocketIO/eventlet and nginx
#   bench/upload.sh    a 1 GiB upload over loopback
#   bench/separate.sh  media_split against the ffmpeg CLI, PCM decode and thumbnail
#   bench/fanout.sh    N WebSocket clients x 20 questions, personad and Flask-SocketIO (~1.5 min)
#   bench/questions.sh questions/s on a 100,000-passage corpus (~25 s)
#   bench/speech.sh    POST /v1/questions to persona-desktop's first audio sample (~10 s)
#   bench/textgen.sh   text engine: kernels, pp/tg tokens/s for shapes A/B/C, training (~5 min)
#   bench/asr.sh       speech recognition, x real time at 1 and 2 threads (~2 min)
#   bench/tts.sh       speech synthesis and Opus encoding, x real time (~10 s)
#   bench/face.sh      face engine per stage, frames/s, video x real time, against the JS reference (~1 min)
# Installs what is missing (apt-get, only when dpkg-query says so). Figures are printed and kept
# under bench/out/ (summary.txt: the figures; results.txt, *.wrk, logs: the raw material).
# About 12 minutes on 2 cores; the first run also makes the test videos (~1.5 min), cached in
# bench/out/. Options by environment: BENCH_PIN=1 (pin servers to CPU 0, wrk to CPU 1),
# NGINX_WORKERS (1), BENCH_SEP_RUNS (3), BENCH_UPLOAD_RANDOM=1, BENCH_OUT (bench/out).
set -euo pipefail
BUILD=${1:?usage: bench/run.sh BUILD_DIR}
[ -x "$BUILD/personad" ] || { echo "bench: $BUILD/personad is missing; build first (make build)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
bench_need_pkgs wrk nginx python3-flask python3-flask-socketio python3-eventlet ffmpeg curl bc \
    gcc pkg-config

T0=$(date +%s)
{
    echo "persona benchmarks — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_DIR" diff --quiet HEAD -- src apps 2>/dev/null || echo ' (+ uncommitted changes in src/ or apps/)')"
    echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
    echo "ram: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT_DIR/machine.txt"

# upload.sh makes the 1 GiB video that separate.sh also splits; both make the 10-minute one once.
"$HERE/http.sh" "$BUILD"
"$HERE/upload.sh" "$BUILD"
"$HERE/separate.sh" "$BUILD"
"$HERE/fanout.sh" "$BUILD"
"$HERE/questions.sh" "$BUILD"
"$HERE/speech.sh" "$BUILD"
"$HERE/textgen.sh" "$BUILD"
"$HERE/asr.sh" "$BUILD"
"$HERE/tts.sh" "$BUILD"
"$HERE/face.sh" "$BUILD"

{
    echo
    cat "$OUT_DIR/machine.txt"
    echo
    cat "$OUT_DIR/http/summary.txt"
    echo
    cat "$OUT_DIR/upload/summary.txt"
    echo
    cat "$OUT_DIR/separate/summary.txt"
    echo
    cat "$OUT_DIR/fanout/summary.txt"
    echo
    cat "$OUT_DIR/questions/summary.txt"
    echo
    cat "$OUT_DIR/speech/summary.txt" 2>/dev/null || echo "speech: skipped (no persona-desktop)"
    echo
    cat "$OUT_DIR/textgen/summary.txt"
    echo
    cat "$OUT_DIR/asr/summary.txt"
    echo
    cat "$OUT_DIR/tts/summary.txt"
    echo
    cat "$OUT_DIR/face/summary.txt"
    echo
    echo "total: $(( $(date +%s) - T0 )) s"
} | tee "$OUT_DIR/summary.txt"
