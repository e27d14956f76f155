#!/usr/bin/env bash
# bench/fanout.sh BUILD_DIR: the fan-out benchmark (docs/benchmarks.md, "Fan-out").
# N WebSocket clients of one account (bench/fanout, one process, one lws context), M questions
# 200 ms apart: time from POST /v1/questions returning to each client's first answer.delta of
# that question; p50/p99/max and delivered/expected, for each N. Then the same with
# Flask-SocketIO on eventlet (bench/flask_fanout.py) and Socket.IO clients from the same program.
# The clients run on the same cores as the server.
# Environment: FANOUT_NS ("100 1000 10000"), FANOUT_FLASK_NS ("100 1000 10000"), FANOUT_M (20),
# FANOUT_INTERVAL_MS (200), FANOUT_WINDOW (256 handshakes in flight), FANOUT_RUN_TIMEOUT (150 s
# per run), FANOUT_CLIENT_UV=1 (the clients on lws's libuv loop instead of poll).
# Results: bench/out/fanout/results.txt (one line per run) and summary.txt.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/fanout.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
bench_need_pkgs curl python3-flask python3-flask-socketio python3-eventlet

NS=${FANOUT_NS-100 1000 10000}
FLASK_NS=${FANOUT_FLASK_NS-100 1000 10000}
M=${FANOUT_M:-20}
INTERVAL=${FANOUT_INTERVAL_MS:-200}
WINDOW=${FANOUT_WINDOW:-256}
RUN_TIMEOUT=${FANOUT_RUN_TIMEOUT:-150}
UV=(); [ "${FANOUT_CLIENT_UV:-0}" = 1 ] && UV=(--uv)

FANOUT=$BUILD/bench/fanout
if [ ! -x "$FANOUT" ]; then
    cmake --build "$BUILD" --target fanout >/dev/null 2>&1 || true
fi
if [ ! -x "$FANOUT" ]; then # a build directory without bench/: compile it by hand
    mkdir -p "$OUT_DIR/fanout"
    gcc -std=c17 -O2 -D_GNU_SOURCE -o "$OUT_DIR/fanout/fanout" "$BENCH_DIR/fanout.c" \
        $(pkg-config --cflags --libs libwebsockets) -lpthread
    FANOUT=$OUT_DIR/fanout/fanout
fi

D=$OUT_DIR/fanout
mkdir -p "$D"; rm -f "$D/results.txt" "$D"/*.log
RES=$D/results.txt
FLASK_PID=

cleanup() {
    bench_personad_stop
    if [ -n "$FLASK_PID" ]; then kill "$FLASK_PID" 2>/dev/null || true; wait "$FLASK_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

run_one() { # label fanout-args...
    local label=$1; shift
    local line rc=0
    line=$(timeout "$RUN_TIMEOUT" "$FANOUT" "$@" "${UV[@]}" 2>>"$D/$label.log") || rc=$?
    [ -n "$line" ] || line="no result (exit $rc; see $label.log)"
    echo "$label $line" | tee -a "$RES"
    sleep 2 # let the server close the last run's connections
}

# ---- personad ------------------------------------------------------------------------------
DATA=$OUT_DIR/data-fanout; rm -rf "$DATA" "$DATA.stdout"
bench_personad_start "$BUILD" "$DATA" "$D/personad.log"
URL=$PERSONAD_URL; PORT=${URL##*:}
TOKEN=$(bench_token "$URL")
DEV=$(curl -sf -X POST "$URL/v1/devices" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"name":"fanout","kind":"desktop"}' | bench_json token)
# A small corpus, so that each question has a real extractive answer (3 passages, ~6 deltas).
python3 - > "$D/corpus.txt" <<'EOF'
topics = ["the garden", "the sea", "my grandmother", "the old house", "winter mornings",
          "the river", "music", "the city at night"]
for i, t in enumerate(topics):
    for k in range(3):
        print(f"I remember {t} very well. It was part of every summer when I was young. "
              f"We talked about {t} for hours, and I still think of it ({i}.{k}).\n")
EOF
curl -sf -X POST "$URL/v1/media?title=memories" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: text/plain' --data-binary @"$D/corpus.txt" >/dev/null
for N in $NS; do
    # the extractive answer (3 passages: ~13 answer.delta + answer.done per question and client)
    run_one "personad_N$N" --port "$PORT" --mode persona --clients "$N" --questions "$M" \
        --interval-ms "$INTERVAL" --window "$WINDOW" --ws-token "$DEV" --post-token "$TOKEN"
    # a one-sentence answer (1 answer.delta + answer.done, as the Flask baseline sends)
    run_one "personad_short_N$N" --port "$PORT" --mode persona --clients "$N" --questions "$M" \
        --interval-ms "$INTERVAL" --window "$WINDOW" --ws-token "$DEV" --post-token "$TOKEN" --short
done
echo "personad_rss_kib $(awk '/VmHWM/ {print $2}' /proc/"$PERSONAD_PID"/status)" | tee -a "$RES"
bench_personad_stop

# ---- Flask-SocketIO on eventlet -----------------------------------------------------------
for N in $FLASK_NS; do # a fresh server for each N: a run that overloads it must not taint the next
    FPORT=$(bench_free_port)
    /usr/bin/python3 "$BENCH_DIR/flask_fanout.py" --port "$FPORT" > "$D/flask_N$N.server.log" 2>&1 &
    FLASK_PID=$!
    bench_wait_port "$FPORT"
    run_one "flask_N$N" --port "$FPORT" --mode socketio --clients "$N" --questions "$M" \
        --interval-ms "$INTERVAL" --window "$WINDOW"
    kill "$FLASK_PID" 2>/dev/null || true; wait "$FLASK_PID" 2>/dev/null || true; FLASK_PID=
done

# ---- summary --------------------------------------------------------------------------------
python3 - "$RES" > "$D/summary.txt" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, _, rest = line.strip().partition(" ")
    kv = dict(x.split("=", 1) for x in rest.split() if "=" in x)
    rows[label] = kv
print("fan-out: first answer.delta of each question at each client, ms after POST returned")
print("(sent: ms after POST was sent; early: samples that arrived before the POST returned)")
print(f"{'run':<24}{'ready':>7}{'delivered/expected':>20}{'p50':>8}{'p99':>8}{'max':>8}"
      f"{'sent p50':>9}{'sent p99':>9}{'POST p50':>9}{'early':>7}{'connect s':>10}")
for label, kv in rows.items():
    if label.endswith("_rss_kib"):
        continue
    if "p50_ms" not in kv:
        print(f"{label:<18} {' '.join(f'{k}={v}' for k, v in kv.items()) or 'no result'}")
        continue
    de = f"{kv['delivered']}/{kv['expected']}"
    early = f"{100 * int(kv['negative']) / max(1, int(kv['delivered'])):.0f}%"
    print(f"{label:<24}{kv['ready']:>7}{de:>20}{kv['p50_ms']:>8}{kv['p99_ms']:>8}{kv['max_ms']:>8}"
          f"{kv['send_p50_ms']:>9}{kv['send_p99_ms']:>9}{kv['post_p50_ms']:>9}{early:>7}{kv['connect_s']:>10}")
for n in ("100", "1000", "10000"):
    f = rows.get(f"flask_N{n}", {})
    for v in ("", "short_"):
        p = rows.get(f"personad_{v}N{n}", {})
        if "p99_ms" in p and "p99_ms" in f and float(p["send_p99_ms"]) > 0:
            print(f"N={n}: Flask / personad{' (short answer)' if v else ''}: p99 "
                  f"{float(f['p99_ms']) / max(0.01, float(p['p99_ms'])):.1f}x, p99 after send "
                  f"{float(f['send_p99_ms']) / float(p['send_p99_ms']):.1f}x")
EOF
cat "$D/summary.txt"
