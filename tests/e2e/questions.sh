#!/usr/bin/env bash
# questions: the whole answer loop on a real personad — text items into the corpus, questions
# answered extractively from the right passages, answer.delta/answer.done events to real
# WebSocket clients (tests/tools/ws_client, libwebsockets), replay with ?after=N with no gap and
# no duplicate, a client that disconnects mid-stream and resumes, two accounts that never see
# each other's events, the long-poll fallback, a client too slow for its queue (close 4008), a
# restart between question and answer, and questions full of FTS syntax, emoji and 10 kB of text.
source "$(dirname "$0")/lib.sh"
: "${WS_CLIENT:?}"

start_personad "$TMP/data" --signup open --ws-queue-events 16
WS_URL=ws://${PD_URL#http://}
A=$(signup_login alice)
B=$(signup_login bob)

add_text() { # TOKEN TITLE TEXT
    api POST "/v1/media?title=$2" -H "Authorization: Bearer $1" -H "Content-Type: text/plain" \
        --data-binary "$3"
}
ask() { # TOKEN TEXT -> sets QID and STATUS (not in a subshell, so STATUS survives)
    local body
    body=$(python3 -c 'import json,sys; print(json.dumps({"text": sys.argv[1]}))' "$2")
    api POST /v1/questions -H "Authorization: Bearer $1" -d "$body"
    QID=$(jget 'j.get("id")')
}
wait_answer() { # TOKEN ID -> status
    local st=
    for _ in $(seq 300); do
        api GET "/v1/questions/$2" -H "Authorization: Bearer $1"
        st=$(jget 'j["status"]')
        [[ $st == answered || $st == failed ]] && break
        sleep 0.05
    done
    echo "$st"
}

add_text "$A" sea "The sea at Brighton was grey and loud that winter. I walked along the pier every morning before work."
add_text "$A" bread "My grandmother baked rye bread with caraway seeds. The kitchen smelled of it all Sunday."
add_text "$A" bikes "I rebuilt an old steel bicycle frame in the garage, painted it blue and rode it to the coast."

LONG=$(python3 -c '
import random
r = random.Random(3)
words = "pier harbour gulls rope tide boats lantern fish salt planks evening wind".split()
print(" ".join(" ".join(r.choice(words) for _ in range(12)) + "." for _ in range(40)))')
add_text "$A" harbour "$LONG"

echo "# an empty corpus gets an honest answer"
ask "$B" "what do you think about the sea?"
QB=$QID
check "bob's question: 202" test "$STATUS" = 202
check "bob's question is answered" test "$(wait_answer "$B" "$QB")" = answered
check "empty corpus: 'I have nothing about that yet.'" test "$(jget 'j["answer"]')" = "I have nothing about that yet."

echo "# WebSocket clients of both accounts"
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after 0 --timeout 60 >"$TMP/wsA.out" 2>"$TMP/wsA.err" &
WSA=$!
"$WS_CLIENT" --url "$WS_URL" --token "$B" --after 0 --timeout 60 >"$TMP/wsB.out" 2>"$TMP/wsB.err" &
WSB=$!
sleep 0.5

ask "$A" "Tell me about Brighton in winter"
Q1=$QID
check "question: 202" test "$STATUS" = 202
check "question answered" test "$(wait_answer "$A" "$Q1")" = answered
check "the answer quotes the right passage" grep -q 'walked along the pier every morning' <(jget 'j["answer"]')
check "the answer names its source" grep -q '"sea"' <(jget 'j["answer"]')
check "the best passage is from the 'sea' item" test "$(jget 'j["passages"][0]["title"]')" = sea
check "timings are recorded" test -n "$(jget 'j["timings"]["total_ms"]')"
ANSWER1=$(jget 'j["answer"]')

# the client sees deltas then done for Q1
for _ in $(seq 100); do grep -q "\"answer.done\",\"question_id\":$Q1" "$TMP/wsA.out" && break; sleep 0.05; done
check "alice's client got answer.done" grep -q "\"answer.done\",\"question_id\":$Q1" "$TMP/wsA.out"
check "alice's client got answer.delta first, and the deltas add up to the done text" \
    python3 - "$TMP/wsA.out" "$Q1" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
q = int(sys.argv[2])
mine = [e for e in ev if e.get("question_id") == q]
deltas = [e for e in mine if e["type"] == "answer.delta"]
done = [e for e in mine if e["type"] == "answer.done"]
assert deltas and len(done) == 1 and mine[-1]["type"] == "answer.done"
assert "".join(d["text"] for d in sorted(deltas, key=lambda d: d["offset"])) == done[0]["text"]
PY
check "bob's client never sees alice's question" bash -c "! grep -q '\"question_id\":$Q1' '$TMP/wsB.out'"
check "bob's client saw its own answer (replayed)" grep -q "\"question_id\":$QB" "$TMP/wsB.out"
check "alice's client never sees bob's question" bash -c "! grep -q '\"question_id\":$QB,' '$TMP/wsA.out'"

ask "$A" "rye bread"
wait_answer "$A" "$QID" >/dev/null
ask "$A" "a blue bicycle"
wait_answer "$A" "$QID" >/dev/null

echo "# replay after N: no gap, no duplicate"
api GET "/v1/events?after=0" -H "Authorization: Bearer $A"
cp "$TMP/body" "$TMP/all.json"
LAST=$(jget 'j["last_seq"]')
check "alice has events" test "${LAST:-0}" -gt 3
MID=$((LAST / 2))
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after "$MID" --count $((LAST - MID)) --timeout 10 >"$TMP/replay.out"
check "replay after $MID delivers exactly seqs $((MID + 1))..$LAST" python3 - "$TMP/replay.out" "$MID" "$LAST" <<'PY'
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1]) if l.startswith("{")]
assert seqs == list(range(int(sys.argv[2]) + 1, int(sys.argv[3]) + 1)), seqs
PY

echo "# ?after=now: only what comes from the moment of connecting"
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after now --count 1 --timeout 10 >"$TMP/now.out" &
NOWC=$!
sleep 0.5
ask "$A" "rye bread"
wait "$NOWC"
check "after=now: the first event is the new answer's, after seq $LAST" python3 - "$TMP/now.out" "$LAST" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(ev) == 1 and ev[0]["seq"] == int(sys.argv[2]) + 1, ev
PY

echo "# disconnect mid-stream, resume from the last seen seq"
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after 0 --count 2 --timeout 10 >"$TMP/part1.out"
RESUME=$(python3 -c 'import json,sys; print(max(json.loads(l)["seq"] for l in open(sys.argv[1]) if l.startswith("{")))' "$TMP/part1.out")
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after "$RESUME" --count $((LAST - RESUME)) --timeout 10 >"$TMP/part2.out"
check "the two halves are the whole log, in order, once each" python3 - "$TMP/part1.out" "$TMP/part2.out" "$LAST" <<'PY'
import json, sys
seqs = [json.loads(l)["seq"] for f in sys.argv[1:3] for l in open(f) if l.startswith("{")]
assert seqs == list(range(1, int(sys.argv[3]) + 1)), seqs
PY

echo "# questions that look like search syntax"
for q in '"' '" OR 1=1 --' 'pier AND NOT bread' 'NEAR(pier bread)' 'pi*' '^pier' 'text:pier' \
    '((((' 'pier -bread +bike' "what's the 🌊 like at the 🏖️?" '' ; do
    [[ -z $q ]] && continue
    ask "$A" "$q"
id=$QID
    check "question '$q': 202" test "$STATUS" = 202
    check "question '$q': answered, not failed" test "$(wait_answer "$A" "$id")" = answered
done
LONGQ=$(python3 -c 'print(("bicycle garage " * 700)[:10000])')
ask "$A" "$LONGQ"
id=$QID
check "a 10 kB question: 202" test "$STATUS" = 202
check "a 10 kB question is answered" test "$(wait_answer "$A" "$id")" = answered
check "... from the bicycle passage" grep -q 'steel bicycle' <(jget 'j["answer"]')
api POST /v1/questions -H "Authorization: Bearer $A" -d '{"text":""}'
check "empty question: 400" test "$STATUS" = 400
api POST /v1/questions -H "Authorization: Bearer $A" -d '{"text":"   "}'
check "blank question: 400" test "$STATUS" = 400
api POST /v1/questions -H "Authorization: Bearer $A" -d "{\"text\":\"$(head -c 10001 /dev/zero | tr '\0' a)\"}"
check "a question over 10 kB: 400" test "$STATUS" = 400
api GET "/v1/questions/$Q1" -H "Authorization: Bearer $B"
check "bob cannot read alice's question: 404" test "$STATUS" = 404
api GET /v1/questions -H "Authorization: Bearer $A"
check "alice's list has her questions" test "$(jget 'len(j["questions"])')" -ge 10

echo "# long-poll"
api GET "/v1/events?after=9223372036854775807&wait=0" -H "Authorization: Bearer $A"
HEAD=$(jget 'j["last_seq"]')
check "wait=0 with nothing new answers at once with last_seq" test "$(jget 'len(j["events"])')" = 0
t0=$(date +%s%N)
curl -s -H "Authorization: Bearer $A" "$PD_URL/v1/events?after=$HEAD&wait=20" >"$TMP/lp.json" &
LP=$!
sleep 0.5
ask "$A" "rye bread with caraway"
QLP=$QID
wait "$LP"
ms=$((($(date +%s%N) - t0) / 1000000))
check "a waiting long-poll returns when an event comes (${ms} ms)" test "$ms" -lt 15000
check "... with the new events after $HEAD" python3 - "$TMP/lp.json" "$HEAD" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); h = int(sys.argv[2])
assert j["events"] and all(e["seq"] > h for e in j["events"])
assert [e["seq"] for e in j["events"]] == list(range(h + 1, h + 1 + len(j["events"])))
PY
t0=$(date +%s%N)
api GET "/v1/events?after=999999999&wait=1" -H "Authorization: Bearer $A"
ms=$((($(date +%s%N) - t0) / 1000000))
check "an idle long-poll times out after ~1 s (${ms} ms) with no events" test "$ms" -ge 900 -a "$(jget 'len(j["events"])')" = 0
api GET "/v1/events?after=-1" -H "Authorization: Bearer $A"
check "bad after: 400" test "$STATUS" = 400
api GET /v1/events
check "long-poll needs a token: 401" test "$STATUS" = 401
STATUS=$(curl -s -o /dev/null -w '%{http_code}' "$PD_URL/v1/ws")
check "/v1/ws without an upgrade: 426" test "$STATUS" = 426

echo "# WebSocket auth"
"$WS_CLIENT" --url "$WS_URL" --token "pst_$(printf 'A%.0s' $(seq 43))" --timeout 5 >"$TMP/bad.out" 2>&1 || true
check "a bad token is closed with 4001" grep -q '^CLOSED 4001' "$TMP/bad.out"

echo "# a client too slow for its queue is closed (4008) and resumes from its last ack"
# (a live client: one replaying the log is paced by its reading and is never "too slow")
api GET "/v1/events?after=9223372036854775807&wait=0" -H "Authorization: Bearer $A"
SLOW_AFTER=$(jget 'j["last_seq"]')
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after "$SLOW_AFTER" --stall 30000 --timeout 40 \
    >"$TMP/slow.out" 2>&1 &
SLOW=$!
sleep 0.5
for i in $(seq 60); do ask "$A" "pier harbour gulls $i"; done
for _ in $(seq 200); do grep -q 'event=ws.too_slow' "$PD_LOG" && break; sleep 0.05; done
check "the server closed the stalled client as too slow (4008)" grep -q 'event=ws.too_slow' "$PD_LOG"
closed_after() { awk '/event=ws.too_slow/ {t = 1} t && /event=ws.close/ {found = 1} END {exit !found}' "$PD_LOG"; }
for _ in $(seq 300); do closed_after && break; sleep 0.05; done
check "... and dropped the connection within 10 s, though the client reads nothing" closed_after
kill "$SLOW" 2>/dev/null || true
RESUME=$(python3 -c 'import json,sys; print(max([json.loads(l)["seq"] for l in open(sys.argv[1]) if l.startswith("{")] + [int(sys.argv[2])]))' "$TMP/slow.out" "$SLOW_AFTER")
api GET "/v1/events?after=9223372036854775807&wait=0" -H "Authorization: Bearer $A"
NOW=$(jget 'j["last_seq"]')
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after "$RESUME" --count $((NOW - RESUME)) --timeout 20 >"$TMP/resumed.out"
check "resuming after its last event ($RESUME) gets the rest, $((NOW - RESUME)) events, no gap" python3 - "$TMP/resumed.out" "$RESUME" "$NOW" <<'PY'
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1]) if l.startswith("{")]
assert seqs == list(range(int(sys.argv[2]) + 1, int(sys.argv[3]) + 1)), (seqs[:5], len(seqs))
PY
api GET /v1/health
check "the server is fine" test "$STATUS" = 200

echo "# restart between question and answer"
kill "$WSA" "$WSB" 2>/dev/null || true
ask "$A" "the kitchen on Sunday"
QR=$QID
kill -9 "$PD_PID"
while kill -0 "$PD_PID" 2>/dev/null; do sleep 0.05; done
PD_PID=
start_personad "$TMP/data" --signup open
WS_URL=ws://${PD_URL#http://}
check "after the restart the question is answered" test "$(wait_answer "$A" "$QR")" = answered
# the whole log, page by page, through the long-poll route
: >"$TMP/log.jsonl"
after=0
while :; do
    api GET "/v1/events?after=$after" -H "Authorization: Bearer $A"
    n=$(jget 'len(j["events"])')
    [[ $n == 0 ]] && break
    jget '"\n".join(json.dumps(e) for e in j["events"])' >>"$TMP/log.jsonl"
    after=$(jget 'j["events"][-1]["seq"]')
done
TOTAL=$(wc -l <"$TMP/log.jsonl")
check "the log pages back without a gap ($TOTAL events)" python3 - "$TMP/log.jsonl" <<'PY'
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1])]
assert seqs == list(range(1, len(seqs) + 1))
PY
check "exactly one answer.done for it in the log" test \
    "$(grep -c "\"answer.done\", \"question_id\": $QR," "$TMP/log.jsonl")" = 1
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after 0 --count "$TOTAL" --timeout 20 >"$TMP/after-restart.out"
check "a client connecting after the restart replays all $TOTAL events, the answer among them" \
    grep -q "\"answer.done\",\"question_id\":$QR" "$TMP/after-restart.out"
finish
