#!/usr/bin/env bash
# textgen: personad with a real persona-textgen — `persona train` trains the account's model,
# through a restart of personad mid-training, and `persona train --wait` follows it to
# model.ready (also on a WebSocket client); questions are answered by it and streamed as several
# answer.delta events whose text adds up to answer.done, the question records the model; another
# account sees none of it; with no service, POST /v1/persona/train is 409; a question asked while
# the service is down is answered by the model once it is back (retry with backoff); with the
# service gone for good, after textgen_fallback_s the answer quotes the corpus with a note; a
# service with an API key answers with the right key and refuses a wrong one (quote + note).
source "$(dirname "$0")/lib.sh"
: "${WS_CLIENT:?}" "${PERSONA:?}" "${PERSONA_TEXTGEN:?}"

TG_PID=
TG_URL=
stop_textgen() {
    if [[ -n $TG_PID ]] && kill -0 "$TG_PID" 2>/dev/null; then
        kill "$TG_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$TG_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$TG_PID" 2>/dev/null || true
        wait "$TG_PID" 2>/dev/null || true
    fi
    TG_PID=
}
trap 'stop_textgen; stop_personad' EXIT

# start_textgen PORT [FLAGS...] — a persona-textgen over $TMP/models on PORT; waits for its
# listening line.
start_textgen() {
    local port=$1
    shift
    : >"$TMP/tg.out"
    "$PERSONA_TEXTGEN" serve --models "$TMP/models" --port "$port" "$@" >"$TMP/tg.out" \
        2>>"$TMP/textgen.log" &
    TG_PID=$!
    for _ in $(seq 300); do
        if grep -q '^persona-textgen listening on ' "$TMP/tg.out" 2>/dev/null; then
            TG_URL=$(sed -n 's/^persona-textgen listening on \(.*\)$/\1/p' "$TMP/tg.out" | head -1)
            return 0
        fi
        kill -0 "$TG_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "persona-textgen did not start:" >&2
    tail -20 "$TMP/textgen.log" >&2
    return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

add_text() { # TOKEN TITLE TEXT
    api POST "/v1/media?title=$2" -H "Authorization: Bearer $1" -H "Content-Type: text/plain" \
        --data-binary "$3"
}
ask() { # TOKEN TEXT -> QID, STATUS
    local body
    body=$(python3 -c 'import json,sys; print(json.dumps({"text": sys.argv[1]}))' "$2")
    api POST /v1/questions -H "Authorization: Bearer $1" -d "$body"
    QID=$(jget 'j.get("id")')
}
wait_answer() { # TOKEN ID SECONDS -> status
    local st=
    for _ in $(seq $(($3 * 20))); do
        api GET "/v1/questions/$2" -H "Authorization: Bearer $1"
        st=$(jget 'j["status"]')
        [[ $st == answered || $st == failed ]] && break
        sleep 0.05
    done
    echo "$st"
}

# The restart below must land mid-training whatever the machine's speed: the service is frozen
# (SIGSTOP) from before personad stops until `persona train --wait` has joined the training.
STEPS=50
NOTE='(The text generation service was unavailable; this answer quotes your own words.)'

mkdir -p "$TMP/models"
TG_PORT=$(free_port)
start_textgen "$TG_PORT"
start_personad "$TMP/data" --signup open --textgen "$TG_URL" --textgen-train-steps "$STEPS" \
    --textgen-fallback-s 30 --textgen-retry-min-ms 250 --textgen-retry-max-ms 1000
WS_URL=ws://${PD_URL#http://}
A=$(signup_login alice)
B=$(signup_login bob)

add_text "$A" sea "The sea at Brighton was grey and loud that winter. I walked along the pier every morning before work, and the gulls followed me.

I remember the smell of salt and chips, and the cold wind that came off the water."
add_text "$A" bread "My grandmother baked rye bread with caraway seeds. The kitchen smelled of it all Sunday, and we ate it warm with butter.

She said bread was patience you could eat."
add_text "$A" bikes "I rebuilt an old steel bicycle frame in the garage, painted it blue and rode it to the coast. It took me a whole summer."
add_text "$B" secret "Bob keeps his own notes about mountains and snow."

echo "# the model of an account that never trained"
api GET /v1/persona/model -H "Authorization: Bearer $A"
check "GET /v1/persona/model: 200" test "$STATUS" = 200
check "status none before training" test "$(jget 'j["status"]')" = none
api POST /v1/persona/train -H "Authorization: Bearer $A" -d '{"steps":0}'
check "steps 0: 400" test "$STATUS" = 400
api POST /v1/persona/train -H "Authorization: Bearer $A" -d '{"base_model":"../x"}'
check "a base_model that is not a model id: 400" test "$STATUS" = 400
api POST /v1/persona/train -H "Authorization: Bearer $A" -d '{"epochs":3}'
check "an unknown field: 400" test "$STATUS" = 400
api POST /v1/persona/train -d ''
check "train needs a token: 401" test "$STATUS" = 401

rc=0
"$PERSONA" --server "$PD_URL" --token "$A" train --steps abc >/dev/null 2>&1 || rc=$?
check "persona train --steps abc: usage error (exit 2)" test "$rc" = 2

echo "# persona train ($STEPS steps); personad restarts mid-training; persona train --wait"
t0=$(date +%s%N)
"$PERSONA" --server "$PD_URL" --token "$A" train --steps "$STEPS" >"$TMP/train0.out"
check "persona train queues a training" grep -q '^training queued (job ' "$TMP/train0.out"
for _ in $(seq 200); do
    api GET /v1/persona/model -H "Authorization: Bearer $A"
    [[ $(jget 'j["status"]') == training && -n $(jget 'j["remote_job"]') ]] && break
    sleep 0.05
done
JOB=$(jget 'j["job"]')
check "the training runs on the service (job $JOB, $(jget 'j["remote_job"]'))" \
    test "$(jget 'j["status"]')" = training
kill -STOP "$TG_PID"
stop_personad
start_personad "$TMP/data" --signup open --textgen "$TG_URL" --textgen-train-steps "$STEPS" \
    --textgen-fallback-s 30 --textgen-retry-min-ms 250 --textgen-retry-max-ms 1000
WS_URL=ws://${PD_URL#http://}
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after 0 --timeout 120 >"$TMP/wsA.out" 2>"$TMP/wsA.err" &
WSA=$!
"$WS_CLIENT" --url "$WS_URL" --token "$B" --after 0 --timeout 120 >"$TMP/wsB.out" 2>"$TMP/wsB.err" &
WSB=$!
rc=0
"$PERSONA" --server "$PD_URL" --token "$A" train --steps "$STEPS" --wait >"$TMP/train.out" \
    2>"$TMP/train.err" &
WAITER=$!
for _ in $(seq 200); do grep -q 'already running' "$TMP/train.err" 2>/dev/null && break; sleep 0.05; done
kill -CONT "$TG_PID"
wait "$WAITER" || rc=$?
check "persona train --wait joins the running training" grep -q 'already running' "$TMP/train.err"
ms=$((($(date +%s%N) - t0) / 1000000))
check "persona train --wait exits 0 (${ms} ms)" test "$rc" = 0
check "... and says the model is ready" grep -q '^model ready: ' "$TMP/train.out"
check "... after progress lines" grep -q 'training: step' "$TMP/train.err"
api GET /v1/persona/model -H "Authorization: Bearer $A"
MODEL=$(jget 'j["model"]')
check "the account's model is ready: '$MODEL'" test "$(jget 'j["status"]')" = ready -a -n "$MODEL"
check "... by the training started before the restart (job $JOB)" test "$(jget 'j["job"]')" = "$JOB"
check "... its steps are the ones asked for" test "$(jget 'j["steps"]')" = "$STEPS"
check "... step reached steps" test "$(jget 'j["step"]')" = "$STEPS"
check "... a train loss is recorded" test -n "$(jget 'j["train_loss"]')"
check "... it answers with it" test "$(jget 'j["answers_with"]')" = "$MODEL"
check "... the model file is in the service's models folder" test -f "$TMP/models/$MODEL.gguf"
"$PERSONA" --server "$PD_URL" --token "$A" model >"$TMP/model.out"
check "persona model shows it" grep -q "^model: $MODEL" "$TMP/model.out"
for _ in $(seq 100); do grep -q '"model.ready"' "$TMP/wsA.out" && break; sleep 0.05; done
check "model.ready reached alice's WebSocket client" \
    grep -q "\"type\":\"model.ready\",\"model\":\"$MODEL\"" "$TMP/wsA.out"

echo "# account isolation"
api GET /v1/persona/model -H "Authorization: Bearer $B"
check "bob's model: still none" test "$(jget 'j["status"]')" = none -a -z "$(jget 'j["model"]')"
check "bob's client never saw alice's model.ready" bash -c "! grep -q 'model.ready' '$TMP/wsB.out'"

echo "# a question answered by the model, streamed"
# A multi-token answer must stream as several deltas. A tiny model may answer in one token, which
# is one delta and proves nothing: then the next question is asked (at most three).
Q1=
for question in "Tell me about the sea at Brighton" "What did your grandmother bake?" \
    "Tell me about the blue bicycle"; do
    ask "$A" "$question"
    check "question: 202" test "$STATUS" = 202
    check "question $QID answered" test "$(wait_answer "$A" "$QID" 30)" = answered
    echo "# answer: $(jget 'j["answer"]') | timings: $(jget 'j["timings"]')"
    check "the question records the model" test "$(jget 'j["model"]')" = "$MODEL"
    check "the answer is not the extractive fallback" bash -c "! grep -qF 'quotes your own words' <<<\"\$1\"" _ "$(jget 'j["answer"]')"
    check "the passages it was given are recorded" test -n "$(jget 'j["passages"][0]["title"]')"
    check "generation time is recorded" test -n "$(jget 'j["timings"]["generate_ms"]')"
    for _ in $(seq 100); do grep -q "\"answer.done\",\"question_id\":$QID" "$TMP/wsA.out" && break; sleep 0.05; done
    if [[ $(grep -c "\"answer.delta\",\"question_id\":$QID," "$TMP/wsA.out") -ge 2 ]]; then
        Q1=$QID
        break
    fi
done
check "a multi-token answer came within three questions" test -n "$Q1"
check "alice's client got several answer.delta events, then answer.done with their text and the model" \
    python3 - "$TMP/wsA.out" "${Q1:-0}" "$MODEL" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
q = int(sys.argv[2])
mine = [e for e in ev if e.get("question_id") == q]
deltas = [e for e in mine if e["type"] == "answer.delta"]
done = [e for e in mine if e["type"] == "answer.done"]
assert len(deltas) >= 2, deltas
assert len(done) == 1 and mine[-1]["type"] == "answer.done", mine
text = "".join(d["text"] for d in sorted(deltas, key=lambda d: d["offset"]))
assert text == done[0]["text"], (text, done[0]["text"])
off = 0
for d in deltas:  # in order, each starting where the last ended
    assert d["offset"] == off, deltas
    off += len(d["text"].encode())
assert done[0]["model"] == sys.argv[3]
PY
check "bob's client never sees alice's answer" bash -c "! grep -q '\"question_id\":${Q1:-0}[,}]' '$TMP/wsB.out'"

echo "# the service down when asked, back a second later: answered by the model"
stop_textgen
ask "$A" "What did your grandmother bake?"
Q2=$QID
sleep 1
start_textgen "$TG_PORT"
check "answered after the service came back" test "$(wait_answer "$A" "$Q2" 20)" = answered
check "... by the model, not the fallback" test "$(jget 'j["model"]')" = "$MODEL"
check "... with no note" bash -c "! grep -qF 'quotes your own words' <<<\"\$1\"" _ "$(jget 'j["answer"]')"
check "... after at least one retry" test "$(jget 'j["timings"].get("retries", 0)')" -ge 1
check "personad logged the deferral" grep -q "event=question.defer question=$Q2" "$PD_LOG"
stop_textgen
kill "$WSA" "$WSB" 2>/dev/null || true
wait "$WSA" "$WSB" 2>/dev/null || true

echo "# a service with an API key"
start_textgen "$TG_PORT" --api-key tg-secret-1
stop_personad
start_personad "$TMP/data" --textgen "$TG_URL" --textgen-api-key tg-secret-1
ask "$A" "Tell me about the pier"
check "with the right key: answered by the model" \
    test "$(wait_answer "$A" "$QID" 30)" = answered -a "$(jget 'j["model"]')" = "$MODEL"
stop_personad
start_personad "$TMP/data" --textgen "$TG_URL" --textgen-api-key wrong-key
ask "$A" "Tell me about the pier"
check "with a wrong key (401): answered at once by quoting" \
    test "$(wait_answer "$A" "$QID" 10)" = answered -a -z "$(jget 'j["model"]')"
check "... with the note for a refusal" \
    grep -qF '(The text generation service could not answer; this answer quotes your own words.)' \
    <(jget 'j["answer"]')
check "... and personad logged the 401" grep -q "event=question.textgen_failed question=$QID .*status=401" "$PD_LOG"
check "the key is never logged" bash -c "! grep -q 'tg-secret-1\|wrong-key' $TMP/personad.*.log"
stop_textgen

echo "# the service gone: after textgen_fallback_s the answer quotes the corpus, with a note"
stop_personad
CLOSED=$(free_port)
start_personad "$TMP/data" --textgen "http://127.0.0.1:$CLOSED" --textgen-fallback-s 3 \
    --textgen-retry-min-ms 250 --textgen-retry-max-ms 1000
t0=$(date +%s%N)
ask "$A" "Tell me about the pier"
Q3=$QID
check "answered within 10 s" test "$(wait_answer "$A" "$Q3" 10)" = answered
ms=$((($(date +%s%N) - t0) / 1000000))
check "... not before the 3 s fallback (${ms} ms)" test "$ms" -ge 2900
check "... quoting the corpus" grep -q 'walked along the pier' <(jget 'j["answer"]')
check "... with the note" grep -qF "$NOTE" <(jget 'j["answer"]')
check "... and no model recorded" test -z "$(jget 'j["model"]')"
api POST /v1/persona/train -H "Authorization: Bearer $B" -d ''
check "train with the service down: 202 (the job waits for it)" test "$STATUS" = 202
api POST /v1/persona/train -H "Authorization: Bearer $B" -d ' '
check "a second train while one is queued: 409 training_in_progress" \
    test "$STATUS" = 409 -a "$(jget 'j["error"]["code"]')" = training_in_progress
api GET /v1/persona/model -H "Authorization: Bearer $A"
check "alice's model survived the restart" test "$(jget 'j["model"]')" = "$MODEL"

echo "# no service configured"
stop_personad
start_personad "$TMP/data"
api POST /v1/persona/train -H "Authorization: Bearer $A" -d '{}'
check "train without a service: 409" test "$STATUS" = 409
check "... textgen_not_configured, saying how" \
    test "$(jget 'j["error"]["code"]')" = textgen_not_configured
check "... the message names --textgen" grep -q -- '--textgen' <(jget 'j["error"]["message"]')
rc=0
"$PERSONA" --server "$PD_URL" --token "$A" train >/dev/null 2>"$TMP/train409.err" || rc=$?
check "persona train fails (exit 1) and prints the reason" \
    test "$rc" = 1 -a -n "$(grep -- '--textgen' "$TMP/train409.err")"
ask "$A" "Tell me about rye bread"
check "questions are answered extractively" test "$(wait_answer "$A" "$QID" 10)" = answered
check "... quoting, with no note and no model" \
    test -z "$(jget 'j["model"]')" -a -n "$(jget 'j["answer"]' | grep caraway)"

finish
