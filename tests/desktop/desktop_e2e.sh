#!/usr/bin/env bash
# desktop_e2e: the real persona-desktop against a real personad — a text item with a distinctive
# sentence, a desktop device token, persona-desktop --out-dir --once, a question; the answer's
# WAV must be 16-bit mono, non-silent and of plausible length. A restart must not speak the same
# answer again (no new WAV, state seq unchanged). Then a network drop: personad is killed and
# restarted on the same port and data dir, persona-desktop reconnects with backoff and writes
# the next answer.
source "$(dirname "$0")/../e2e/lib.sh"
DESK=${PERSONA_DESKTOP:-$(dirname "$PERSONAD")/persona-desktop}
[[ -x $DESK ]] || { echo "persona-desktop not found at $DESK"; exit 1; }
unset PERSONA_SERVER PERSONA_TOKEN PERSONA_CONFIG
export PERSONA_DESKTOP_CONFIG=$TMP/no-desktop-config
export HOME=$TMP/home XDG_STATE_HOME=$TMP/state

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA=$TMP/data
# start_fixed — personad on the fixed $PORT (so a restart keeps the address)
start_fixed() {
    PD_LOG=$TMP/personad.$(date +%s%N).log
    "$PERSONAD" --port "$PORT" --data-dir "$DATA" --log-level info >"$TMP/pd.out" 2>"$PD_LOG" &
    PD_PID=$!
    for _ in $(seq 300); do
        if grep -q '^personad listening on ' "$TMP/pd.out" 2>/dev/null; then
            PD_URL=$(sed -n 's/^personad listening on \(.*\)$/\1/p' "$TMP/pd.out" | head -1)
            return 0
        fi
        kill -0 "$PD_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$PD_LOG" >&2
    return 1
}
DK_PID=
stop_desk() {
    if [[ -n $DK_PID ]] && kill -0 "$DK_PID" 2>/dev/null; then
        kill "$DK_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DK_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DK_PID" 2>/dev/null || true
    fi
    DK_PID=
}
trap 'stop_desk; stop_personad' EXIT

start_fixed

TOKEN=$(signup_login alice)
api POST "/v1/media?title=seanotes" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/plain' \
    --data-binary 'The lighthouse keeper painted the old blue boat every spring near the harbour.'
check "text item uploaded (201)" [ "$STATUS" = 201 ]
MID=$(jget 'j["id"]')
check "text item processed" [ "$(wait_media "$TOKEN" "$MID")" = ready ]
api POST /v1/devices -H "Authorization: Bearer $TOKEN" -d '{"name":"desk","kind":"desktop"}'
check "desktop device created" [ "$STATUS" = 201 -o "$STATUS" = 200 ]
DTOKEN=$(jget 'j["token"]')
OUT=$TMP/out
STATE=$TMP/desk-state

# wav_ok FILE MIN_S MAX_S — 16-bit mono PCM, RMS above 300, duration within bounds
wav_ok() {
    python3 - "$@" <<'PY'
import sys, wave, struct, math
w = wave.open(sys.argv[1]); n = w.getnframes(); rate = w.getframerate()
ok = w.getsampwidth() == 2 and w.getnchannels() == 1 and n > 0
data = struct.unpack("<%dh" % n, w.readframes(n)) if ok else []
rms = math.sqrt(sum(x * x for x in data) / max(1, len(data)))
secs = n / rate if rate else 0
print("wav: rate=%d secs=%.2f rms=%.0f" % (rate, secs, rms))
sys.exit(0 if ok and rms > 300 and float(sys.argv[2]) <= secs <= float(sys.argv[3]) else 1)
PY
}
# ask TEXT — asks and waits for the answer; sets QID and ANSWER
ask() {
    api POST /v1/questions -H "Authorization: Bearer $TOKEN" -d "{\"text\":\"$1\"}"
    QID=$(jget 'j["id"]')
    for _ in $(seq 300); do
        api GET "/v1/questions/$QID" -H "Authorization: Bearer $TOKEN"
        [[ $(jget 'j.get("status")') == answered ]] && break
        sleep 0.1
    done
    ANSWER=$(jget 'j.get("answer")')
}
words() { echo "$1" | wc -w; }

# ---- 1. --once writes the answer's WAV ------------------------------------------------------
"$DESK" --server "$PD_URL" --token "$DTOKEN" --out-dir "$OUT" --once --state "$STATE" \
    2>"$TMP/desk1.log" &
DK_PID=$!
# A new desktop starts at ?after=now: ask only once it is connected (and the hub has placed it).
for _ in $(seq 100); do grep -q 'event=desktop.connected' "$TMP/desk1.log" && break; sleep 0.1; done
sleep 0.5
ask "what did the lighthouse keeper paint?"
for _ in $(seq 300); do kill -0 "$DK_PID" 2>/dev/null || break; sleep 0.1; done
wait "$DK_PID"; rc=$?; DK_PID=
check "persona-desktop --once exits 0 after the answer" [ "$rc" = 0 ]
WAV=$OUT/answer-$QID.wav
check "answer WAV written" [ -f "$WAV" ]
cp "$WAV" "$TMP/voice-ref.wav" # the answer at the default rate, for the voice check at the end
check "answer mentions the passage" grep -q "lighthouse" <<<"$ANSWER"
n=$(words "$ANSWER")
check "WAV is non-silent 16-bit mono of plausible length ($n words)" \
    wav_ok "$WAV" "$(python3 -c "print(0.15*$n)")" "$(python3 -c "print(0.9*$n+2)")"
SEQ1=$(sed -n 's/^seq = //p' "$STATE")
check "state file has the seq" [ -n "$SEQ1" ] && [ "$SEQ1" -gt 0 ]

# ---- 2. a restart does not speak it again -----------------------------------------------------
rm -f "$WAV"
"$DESK" --server "$PD_URL" --token "$DTOKEN" --out-dir "$OUT" --state "$STATE" 2>"$TMP/desk2.log" &
DK_PID=$!
sleep 3
check "restart: no WAV written again" [ "$(count_files "$OUT")" = 0 ]
check "restart: state seq unchanged" [ "$(sed -n 's/^seq = //p' "$STATE")" = "$SEQ1" ]

# ---- 3. network drop: personad killed and restarted, the next answer still arrives -------------
stop_personad
sleep 1.5 # persona-desktop retries with backoff meanwhile
start_fixed
ask "tell me about the blue boat"
WAV2=$OUT/answer-$QID.wav
for _ in $(seq 400); do [[ -f $WAV2 ]] && break; sleep 0.1; done
check "after the drop: next answer's WAV written" [ -f "$WAV2" ]
check "after the drop: reconnected with backoff" grep -q "event=desktop.reconnect" "$TMP/desk2.log"
n=$(words "$ANSWER")
check "after the drop: WAV plausible" \
    wav_ok "$WAV2" "$(python3 -c "print(0.15*$n)")" "$(python3 -c "print(0.9*$n+2)")"
stop_desk
# ---- 4. the account's voice (PUT /v1/voice) is the desktop's, unless set on the desktop -----
check "the first run used the account's (default) voice" grep -q 'event=desktop.voice source=account voice=en-us rate=175' "$TMP/desk1.log"
api PUT /v1/voice -H "Authorization: Bearer $TOKEN" -d '{"rate":400}'
check "PUT /v1/voice rate 400: 200" [ "$STATUS" = 200 ]
"$DESK" --server "$PD_URL" --token "$DTOKEN" --out-dir "$OUT" --once --state "$TMP/desk-state-voice" \
    2>"$TMP/desk1b.log" &
DK_PID=$!
for _ in $(seq 100); do grep -q 'event=desktop.connected' "$TMP/desk1b.log" && break; sleep 0.1; done
sleep 0.5
ask "what did the lighthouse keeper paint?"
for _ in $(seq 300); do kill -0 "$DK_PID" 2>/dev/null || break; sleep 0.1; done
wait "$DK_PID"; DK_PID=
check "... the desktop speaks at the account's rate" grep -q 'event=desktop.voice source=account voice=en-us rate=400' "$TMP/desk1b.log"
FAST=$OUT/answer-$QID.wav
check "... the same answer is spoken faster" python3 -c "
import sys, wave
a, b = wave.open('$TMP/voice-ref.wav'), wave.open('$FAST')
sys.exit(0 if b.getnframes() < 0.75 * a.getnframes() else 1)"
"$DESK" --server "$PD_URL" --token "$DTOKEN" --rate 175 --out-dir "$OUT" --once --state "$TMP/desk-state-voice2" \
    2>"$TMP/desk1c.log" &
DK_PID=$!
for _ in $(seq 100); do grep -q 'event=desktop.voice' "$TMP/desk1c.log" && break; sleep 0.1; done
check "... but --rate on the desktop wins" grep -q 'event=desktop.voice source=account voice=en-us rate=175' "$TMP/desk1c.log"
kill "$DK_PID" 2>/dev/null; wait "$DK_PID" 2>/dev/null; DK_PID=
api PUT /v1/voice -H "Authorization: Bearer $TOKEN" -d '{"rate":175}'

check "no sanitizer report in persona-desktop's logs" \
    bash -c "! grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $TMP/desk*.log"
finish
