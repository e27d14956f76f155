#!/usr/bin/env bash
# textgen.sh: persona-textgen end to end — a real model trained at test start, the offline
# subcommands, and the HTTP API with curl and a small Python client: models, chat and text
# completions (plain and streamed, SSE framing checked byte for byte), errors (404, 400, 401,
# 413, 503), file uploads (multipart and raw) and bad JSONL, fine-tuning from scratch and its
# model answering, cancel mid-training, concurrent streams that interleave at similar rates,
# and a restart that lists the files and jobs. Needs PERSONA_TEXTGEN and PERSONA_TEST_TMP.
set -euo pipefail
: "${PERSONA_TEXTGEN:?}" "${PERSONA_TEST_TMP:?}"
TG=$PERSONA_TEXTGEN
TMP=$PERSONA_TEST_TMP
rm -rf "$TMP"
mkdir -p "$TMP/models"
MODELS=$TMP/models
KEY=test-key-123
PASSED=0
FAILED=0
TG_PID=
URL=
LOG=
T0=$(date +%s)

ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
bad() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
stop_tg() {
    if [[ -n $TG_PID ]] && kill -0 "$TG_PID" 2>/dev/null; then
        kill "$TG_PID" 2>/dev/null || true
        for _ in $(seq 200); do kill -0 "$TG_PID" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$TG_PID" 2>/dev/null || true
    fi
    [[ -n $TG_PID ]] && wait "$TG_PID" 2>/dev/null || true
    TG_PID=
}
trap stop_tg EXIT
start_tg() {
    LOG=$TMP/textgen.$(date +%s%N).log
    "$TG" serve --port 0 --models "$MODELS" --api-key "$KEY" --threads 2 "$@" >"$TMP/tg.out" 2>"$LOG" &
    TG_PID=$!
    for _ in $(seq 300); do
        if grep -q '^persona-textgen listening on http://' "$TMP/tg.out" 2>/dev/null; then
            URL=$(sed -n 's/^persona-textgen listening on \(.*\)$/\1/p' "$TMP/tg.out" | head -1)
            return 0
        fi
        kill -0 "$TG_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "persona-textgen did not start:" >&2
    cat "$LOG" >&2
    return 1
}
# api METHOD PATH [CURL-ARGS...]: body to $TMP/body, status to $STATUS
api() {
    local method=$1 path=$2
    shift 2
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -X "$method" -H 'Expect:' \
        -H "Authorization: Bearer $KEY" "$@" "$URL$path" || true)
}
jget() {
    python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
v=eval(sys.argv[2])
print("" if v is None else (json.dumps(v) if isinstance(v,(dict,list,bool)) else v))' "$TMP/body" "$1"
}
section() { echo "# $* (at $(($(date +%s) - T0)) s)"; }
finish() {
    stop_tg
    local reports
    reports=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/textgen.*.log 2>/dev/null || true)
    if [[ -n $reports ]]; then
        bad "sanitizer reports in: $reports"
        grep -h -A 20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $reports | head -60
    else
        ok "no sanitizer report in the service's logs"
    fi
    echo "$PASSED passed, $FAILED failed, $(($(date +%s) - T0)) s"
    [[ $FAILED -eq 0 ]]
}

# The sanitized build is several times slower: smaller training runs there.
SANITIZED=0
if ldd "$TG" 2>/dev/null | grep -q libasan; then SANITIZED=1; fi
STEPS=${TEXTGEN_TEST_STEPS:-$((SANITIZED ? 25 : 60))}
FT_STEPS=$((SANITIZED ? 10 : 30))

# A corpus: one document (no blank lines), so that end-of-text is rare mid-answer.
python3 - "$TMP/corpus.txt" "$TMP/data.jsonl" <<'EOF'
import json, sys
paras = [
    "The lighthouse keeper walked up the spiral stairs every evening to light the lamp.",
    "Ships far out at sea saw the beam and knew the rocks were near.",
    "In the morning he wrote the weather in a small blue book and made tea.",
    "His daughter painted the boats in the harbour and sold the paintings in town.",
    "When storms came, the whole village gathered in the church and sang old songs.",
    "The keeper liked the quiet of winter, the long nights and the sound of the waves.",
]
with open(sys.argv[1], "w") as f:
    f.write("\n".join(paras * 4) + "\n")
with open(sys.argv[2], "w") as f:
    for p in paras:
        f.write(json.dumps({"messages": [{"role": "user", "content": "Tell me about the keeper."},
                                          {"role": "assistant", "content": p}]}) + "\n")
    f.write(json.dumps({"prompt": "The keeper ", "completion": "lit the lamp."}) + "\n")
    f.write(json.dumps({"text": " ".join(paras)}) + "\n")
EOF

section "the command line"
"$TG" --help >/dev/null; check "--help: 0" test $? = 0
for c in serve train generate quantize tokenize; do
    "$TG" $c --help >"$TMP/help" 2>&1
    check "$c --help: 0 and usage" grep -q '^usage: persona-textgen' "$TMP/help"
done
"$TG" --version | grep -q '^persona-textgen ' && ok "--version" || bad "--version"
set +e
"$TG" frobnicate >/dev/null 2>&1; check "unknown command: 2" test $? = 2
"$TG" train --data "$TMP/corpus.txt" >/dev/null 2>&1; check "train without --out: 2" test $? = 2
"$TG" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --steps abc >/dev/null 2>&1
check "train --steps abc: 2" test $? = 2
"$TG" serve --port 0 >/dev/null 2>&1; check "serve without --models: 2" test $? = 2
"$TG" generate --model "$TMP/none.gguf" --prompt hi >/dev/null 2>&1; check "generate, no such model: 1" test $? = 1
set -e

section "train a tiny model ($STEPS steps)"
t=$(date +%s.%N)
"$TG" train --data "$TMP/corpus.txt" --out "$MODELS/tiny.gguf" --preset tiny --steps "$STEPS" \
    --batch 8 --seq 64 --vocab 300 --seed 1 2>"$TMP/train.err"
check "train: the model file exists" test -s "$MODELS/tiny.gguf"
check "train: progress lines (not a terminal)" grep -q '^train step=' "$TMP/train.err"
echo "# $(tail -1 "$TMP/train.err") ($(python3 -c "import time;print(round(time.time()-$t,1))") s)"
if command -v script >/dev/null; then
    script -qc "'$TG' train --data '$TMP/corpus.txt' --out '$TMP/tty.gguf' --preset tiny --steps 5 --batch 2 --seq 32 --vocab 280" /dev/null >"$TMP/tty.out" 2>&1 || true
    check "on a terminal: one line updated with \\r (bar, step, loss, eval, tok/s, ETA)" \
        python3 -c 'import sys; t=open(sys.argv[1],"rb").read().decode(); l=t.split("\r"); sys.exit(0 if len(l)>=6 and all(k in l[5] for k in ("step 5/5","loss","eval","tok/s","ETA","[")) else 1)' "$TMP/tty.out"
fi
# Ctrl-C writes a checkpoint; --resume goes on from it
ctrlc_run() {
    "$TG" train --data "$TMP/corpus.txt" --out "$TMP/long.gguf" --preset tiny --steps 100000 \
        --batch 8 --seq 64 --vocab 300 --seed 1 "$@" 2>"$TMP/long.err" &
    local pid=$! n=0
    for _ in $(seq 600); do
        n=$(grep -c '^train step=' "$TMP/long.err" || true)
        [[ $n -ge 1 ]] && break
        sleep 0.05
    done
    sleep 0.5
    kill -INT $pid
    wait $pid && CTRLC=0 || CTRLC=$?
}
ctrlc_run
check "Ctrl-C: exit 1, checkpoint written" test "$CTRLC:$(test -s "$TMP/long.gguf.ckpt" && echo ckpt)" = 1:ckpt
check "Ctrl-C: says how to resume" grep -q -- '--resume' "$TMP/long.err"
ctrlc_run --resume
first=$(sed -n 's/^train step=\([0-9]*\) .*/\1/p' "$TMP/long.err" | head -1)
check "--resume starts past step 1 (at $first)" test "${first:-0}" -gt 1
check "no final model after an interrupted run" test ! -e "$TMP/long.gguf"
"$TG" generate --model "$MODELS/tiny.gguf" --prompt "The keeper" --max-tokens 20 --temperature 0 \
    >"$TMP/gen1" 2>/dev/null
"$TG" generate --model "$MODELS/tiny.gguf" --prompt "The keeper" --max-tokens 20 --temperature 0 \
    >"$TMP/gen2" 2>/dev/null
check "generate: some text" test -s "$TMP/gen1"
check "generate: greedy is deterministic" cmp -s "$TMP/gen1" "$TMP/gen2"
echo "# generated: $(head -c 120 "$TMP/gen1" | tr '\n' ' ')"
"$TG" tokenize --model "$MODELS/tiny.gguf" "The keeper" >"$TMP/tok"
check "tokenize: id<TAB>\"piece\" lines" grep -qP '^\d+\t".*"$' "$TMP/tok"
"$TG" tokenize --train-vocab 280 --data "$TMP/corpus.txt" "The keeper keeps" >"$TMP/tok2"
check "tokenize --train-vocab: fewer tokens than bytes, pieces spell the text" python3 -c 'import json,sys
p=[json.loads(l.split("\t",1)[1]) for l in open(sys.argv[1])]
sys.exit(0 if "".join(p)=="The keeper keeps" and len(p)<16 else 1)' "$TMP/tok2"
"$TG" quantize "$MODELS/tiny.gguf" "$MODELS/tiny-q8.gguf" q8_0
check "quantize q8_0: a smaller file" test "$(stat -c %s "$MODELS/tiny-q8.gguf")" -lt "$(stat -c %s "$MODELS/tiny.gguf")"
set +e
"$TG" quantize "$MODELS/tiny.gguf" "$TMP/x.gguf" q5_k >/dev/null 2>&1; check "quantize to an unknown type: 2" test $? = 2
set -e
"$TG" generate --model "$MODELS/tiny-q8.gguf" --chat "Tell me" --max-tokens 10 --temperature 0 >"$TMP/gen3" 2>/dev/null
check "generate --chat from the q8_0 model: 0" test $? = 0

section "the service"
start_tg
api GET /health
check "health: 200 ok" test "$STATUS:$(jget 'j["status"]')" = "200:ok"
STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL/v1/models")
check "no API key: 401" test "$STATUS" = 401
check "401 in OpenAI's error shape" test "$(jget 'j["error"]["code"]+" "+j["error"]["type"]+" "+str(j["error"]["param"])')" = "invalid_api_key invalid_request_error None"
STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer ${KEY}x" "$URL/v1/models")
check "wrong API key: 401" test "$STATUS" = 401
STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Expect:' --data-binary @"$MODELS/tiny.gguf" "$URL/v1/files")
check "no API key, with a 4 MB body: 401 (answered before the body is read)" test "$STATUS" = 401
api GET /v1/models
check "models: 200" test "$STATUS" = 200
check "models lists tiny and tiny-q8" test "$(jget 'sorted(m["id"] for m in j["data"])')" = '["tiny", "tiny-q8"]'
check "models: object list, owned_by persona" test "$(jget 'j["object"]+j["data"][0]["object"]+j["data"][0]["owned_by"]')" = listmodelpersona
api GET /v1/models/tiny-q8
check "one model: 200" test "$STATUS:$(jget 'j["id"]+" "+j["object"]')" = "200:tiny-q8 model"
api GET /v1/models/nope
check "one unknown model: 404" test "$STATUS:$(jget 'j["error"]["code"]')" = 404:model_not_found

api POST /v1/chat/completions -d '{"model":"tiny","messages":[{"role":"user","content":"Tell me about the keeper."}],"max_tokens":16,"temperature":0}'
check "chat: 200" test "$STATUS" = 200
check "chat: object, role, finish_reason" test "$(jget 'j["object"]+" "+j["choices"][0]["message"]["role"]+" "+str(j["choices"][0]["finish_reason"] in ("stop","length"))')" = "chat.completion assistant True"
check "chat: usage adds up" test "$(jget 'j["usage"]["prompt_tokens"]+j["usage"]["completion_tokens"]==j["usage"]["total_tokens"] and 0<j["usage"]["completion_tokens"]<=16 and j["id"].startswith("chatcmpl-")')" = true
cp "$TMP/body" "$TMP/chat1.json"
api POST /v1/chat/completions -d '{"model":"tiny","messages":[{"role":"user","content":"Tell me about the keeper."}],"max_tokens":16,"temperature":0}'
check "chat: greedy answers repeat" test "$(jget 'j["choices"][0]["message"]["content"]')" = "$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' "$TMP/chat1.json")"
api POST /v1/completions -d '{"model":"tiny","prompt":"The keeper","max_tokens":8,"temperature":0}'
check "completion: 200 text_completion with text" test "$STATUS:$(jget 'j["object"]+str(isinstance(j["choices"][0]["text"],str))')" = "200:text_completionTrue"
check "completion: same text as the generate command" test "$(jget 'j["choices"][0]["text"]')" = "$("$TG" generate --model "$MODELS/tiny.gguf" --prompt "The keeper" --max-tokens 8 --temperature 0 2>/dev/null)"

# SSE framing, checked on the raw bytes
cat >"$TMP/sse.py" <<'EOF'
import json, sys
raw = open(sys.argv[1], "rb").read().decode()
kind = sys.argv[2]
def fail(msg):
    print("SSE:", msg, repr(raw[:300])); sys.exit(1)
if not raw.endswith("data: [DONE]\n\n"): fail("does not end with data: [DONE]")
events = raw.split("\n\n")
if events[-1] != "": fail("trailing bytes")
events = events[:-1]
for e in events:
    if not e.startswith("data: ") or "\n" in e: fail("event not one data line: " + e[:80])
if events[-1] != "data: [DONE]": fail("last event")
objs = [json.loads(e[6:]) for e in events[:-1]]
if len(set(o["id"] for o in objs)) != 1: fail("ids differ")
if kind == "chat":
    if any(o["object"] != "chat.completion.chunk" for o in objs): fail("object")
    if objs[0]["choices"][0]["delta"] != {"role": "assistant"}: fail("first delta is not the role")
    mids = objs[1:-1]
    if not mids or any(set(o["choices"][0]["delta"]) != {"content"} or o["choices"][0]["finish_reason"] is not None for o in mids): fail("content deltas")
    if objs[-1]["choices"][0]["delta"] != {} or objs[-1]["choices"][0]["finish_reason"] not in ("stop", "length"): fail("last chunk")
    text = "".join(o["choices"][0]["delta"]["content"] for o in mids)
else:
    if any(o["object"] != "text_completion" for o in objs): fail("object")
    if objs[-1]["choices"][0]["finish_reason"] not in ("stop", "length"): fail("last chunk")
    if any(o["choices"][0]["finish_reason"] is not None for o in objs[:-1]): fail("finish early")
    text = "".join(o["choices"][0]["text"] for o in objs)
print(text, end="")
EOF
curl -sN -D "$TMP/headers" -o "$TMP/sse" -H "Authorization: Bearer $KEY" "$URL/v1/chat/completions" \
    -d '{"model":"tiny","messages":[{"role":"user","content":"Tell me about the keeper."}],"max_tokens":16,"temperature":0,"stream":true}'
check "chat stream: text/event-stream" grep -qi '^content-type: text/event-stream' "$TMP/headers"
check "chat stream: chunked" grep -qi '^transfer-encoding: chunked' "$TMP/headers"
streamed=$(python3 "$TMP/sse.py" "$TMP/sse" chat) && ok "chat stream: SSE framing" || bad "chat stream: SSE framing"
check "chat stream: same text as the plain answer" test "$streamed" = "$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' "$TMP/chat1.json")"
curl -sN -o "$TMP/sse2" -H "Authorization: Bearer $KEY" "$URL/v1/completions" \
    -d '{"model":"tiny","prompt":"The keeper","max_tokens":8,"temperature":0,"stream":true}'
python3 "$TMP/sse.py" "$TMP/sse2" completion >/dev/null && ok "completion stream: SSE framing" || bad "completion stream: SSE framing"

section "errors"
api POST /v1/chat/completions -d '{"model":"nope","messages":[{"role":"user","content":"x"}]}'
check "unknown model: 404 model_not_found" test "$STATUS:$(jget 'j["error"]["code"]')" = 404:model_not_found
api POST /v1/chat/completions -d '{"model":"../tiny","messages":[{"role":"user","content":"x"}]}'
check "model name with ..: 404" test "$STATUS" = 404
for body in '{"model":"tiny","messages":' '' 'null' '{"model":"tiny","messages":[{"role":"user","content":"x"}],"temperature":"hot"}'; do
    api POST /v1/chat/completions -d "$body"
    check "bad body '${body:0:30}': 400" test "$STATUS:$(jget 'j["error"]["type"]')" = 400:invalid_request_error
done
python3 -c 'import json; print(json.dumps({"model":"tiny","prompt":" ".join("lighthouse%d" % i for i in range(3000))}))' >"$TMP/long.json"
api POST /v1/completions --data-binary @"$TMP/long.json"
check "prompt longer than the context: 400 context_length_exceeded" test "$STATUS:$(jget 'j["error"]["code"]')" = 400:context_length_exceeded
api POST /v1/completions -d '{"model":"tiny","prompt":"x","max_tokens":100000}'
check "max_tokens beyond the context: 400" test "$STATUS" = 400
api GET /v1/nothing
check "unknown path: 404" test "$STATUS" = 404
api DELETE /v1/models
check "wrong method: 405" test "$STATUS" = 405
head -c $((17 << 20)) /dev/zero >"$TMP/big"
api POST /v1/files --data-binary @"$TMP/big" -H 'Content-Type: application/jsonl'
check "body over the limit: 413" test "$STATUS" = 413

python3 - "${URL#http://}" <<'EOF2'
import os, random, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
random.seed(7)
reqs = [b"GARBAGE\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"mo",
        b"POST /v1/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"]
reqs += [bytes(random.getrandbits(8) for _ in range(random.randint(1, 300))) for _ in range(20)]
for r in reqs:
    s = socket.create_connection((host, int(port)), timeout=5)
    try:
        s.sendall(r)
        s.shutdown(socket.SHUT_WR)
        s.recv(4096)
    except OSError:
        pass
    s.close()
EOF2
api GET /health
check "garbage, truncated and oversized requests: the service still answers" test "$STATUS" = 200

section "files"
api POST /v1/files -F purpose=fine-tune -F "file=@$TMP/data.jsonl"
check "multipart upload: 200" test "$STATUS" = 200
FILE1=$(jget 'j["id"]')
check "file object" test "$(jget 'j["object"]+" "+j["purpose"]+" "+j["filename"]+" "+str(j["bytes"])')" = "file fine-tune data.jsonl $(stat -c %s "$TMP/data.jsonl")"
api POST "/v1/files?purpose=fine-tune&filename=raw.jsonl" --data-binary @"$TMP/data.jsonl" -H 'Content-Type: application/jsonl'
check "raw upload: 200" test "$STATUS:$(jget 'j["filename"]')" = 200:raw.jsonl
FILE2=$(jget 'j["id"]')
api GET "/v1/files/$FILE1"
check "get file: 200" test "$STATUS:$(jget 'j["id"]')" = "200:$FILE1"
api GET /v1/files/file-nope
check "unknown file: 404" test "$STATUS" = 404
printf '{"text":"ok"}\n{"text":"ok"\n' >"$TMP/bad.jsonl"
api POST /v1/files -F purpose=fine-tune -F "file=@$TMP/bad.jsonl"
check "bad JSONL: 400 naming line 2" test "$STATUS:$(jget '"line 2" in j["error"]["message"]')" = 400:true
printf '{"text":"ok"}\n{"question":"?"}\n' >"$TMP/bad2.jsonl"
api POST "/v1/files?purpose=fine-tune" --data-binary @"$TMP/bad2.jsonl" -H 'Content-Type: application/x-ndjson'
check "a line without messages/prompt/text: 400" test "$STATUS" = 400
api POST /v1/files -F purpose=assistants -F "file=@$TMP/data.jsonl"
check "wrong purpose: 400" test "$STATUS" = 400

section "fine-tuning"
api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE1\",\"model\":\"scratch-tiny\",\"suffix\":\"e2e\",\"seed\":3,\"hyperparameters\":{\"steps\":$FT_STEPS,\"batch_size\":4}}"
check "job: 200 queued or running" test "$STATUS:$(jget 'j["status"] in ("queued","running")')" = 200:true
JOB1=$(jget 'j["id"]')
api POST /v1/fine_tuning/jobs -d '{"training_file":"file-nope","model":"scratch-tiny"}'
check "job on an unknown file: 404" test "$STATUS" = 404
api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE1\",\"model\":\"scratch-huge\"}"
check "job on an unknown preset: 404" test "$STATUS" = 404
api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE1\",\"model\":\"tiny-q8\"}"
check "job continuing a q8_0 model: 400" test "$STATUS" = 400
api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE1\",\"model\":\"tiny\",\"hyperparameters\":{\"steps\":0}}"
check "job with 0 steps: 400" test "$STATUS" = 400
st=
for _ in $(seq 1200); do
    api GET "/v1/fine_tuning/jobs/$JOB1"
    st=$(jget 'j["status"]')
    [[ $st == succeeded || $st == failed || $st == cancelled ]] && break
    sleep 0.1
done
check "job from scratch succeeded ($(jget 'j["error"]'))" test "$st" = succeeded
check "job: fine_tuned_model, steps, losses, tokens" test "$(jget 'j["fine_tuned_model"]+" "+str(j["step"]==j["steps"]=='$FT_STEPS')+" "+str(j["train_loss"]>0 and j["trained_tokens"]>0 and j["finished_at"]>=j["created_at"])')" = "ft-scratch-tiny-e2e True True"
api GET /v1/models
check "the fine-tuned model is listed" test "$(jget '"ft-scratch-tiny-e2e" in [m["id"] for m in j["data"]]')" = true
api POST /v1/chat/completions -d '{"model":"ft-scratch-tiny-e2e","messages":[{"role":"user","content":"Tell me about the keeper."}],"max_tokens":12}'
check "the fine-tuned model answers" test "$STATUS:$(jget 'j["usage"]["completion_tokens"]>0')" = 200:true

api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE2\",\"model\":\"tiny\",\"suffix\":\"cont\",\"hyperparameters\":{\"steps\":5,\"batch_size\":2,\"learning_rate_multiplier\":0.5}}"
JOBC=$(jget 'j["id"]')
for _ in $(seq 600); do
    api GET "/v1/fine_tuning/jobs/$JOBC"
    [[ $(jget 'j["status"]') == succeeded || $(jget 'j["status"]') == failed ]] && break
    sleep 0.1
done
check "a job continuing model tiny succeeded" test "$(jget 'j["status"]+" "+str(j["fine_tuned_model"])+" "+str(j["hyperparameters"]["learning_rate_multiplier"])')" = "succeeded ft-tiny-cont 0.5"
api POST /v1/completions -d '{"model":"ft-tiny-cont","prompt":"The keeper","max_tokens":4}'
check "the continued model answers" test "$STATUS" = 200

api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE2\",\"model\":\"tiny\",\"hyperparameters\":{\"steps\":100000}}"
JOB2=$(jget 'j["id"]')
for _ in $(seq 600); do
    api GET "/v1/fine_tuning/jobs/$JOB2"
    [[ $(jget 'j["status"]') == running && $(jget 'j["step"]') -gt 0 ]] && break
    sleep 0.05
done
check "a long job runs" test "$(jget 'j["status"]')" = running
# inference still answers while training
api POST /v1/completions -d '{"model":"tiny","prompt":"The keeper","max_tokens":4}'
check "a completion while training: 200" test "$STATUS" = 200
api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE2\",\"model\":\"tiny\",\"hyperparameters\":{\"steps\":7}}"
JOBQ=$(jget 'j["id"]')
check "a second job waits its turn" test "$(jget 'j["status"]')" = queued
api POST "/v1/fine_tuning/jobs/$JOBQ/cancel"
check "cancelling a queued job: cancelled at once" test "$STATUS:$(jget 'j["status"]+" "+str(j["finished_at"] is not None)')" = "200:cancelled True"
api POST "/v1/fine_tuning/jobs/$JOB2/cancel"
check "cancel: 200" test "$STATUS" = 200
for _ in $(seq 200); do
    api GET "/v1/fine_tuning/jobs/$JOB2"
    [[ $(jget 'j["status"]') == cancelled ]] && break
    sleep 0.05
done
check "cancelled mid-training" test "$(jget 'j["status"]+" "+str(0<j["step"]<100000 and j["finished_at"] is not None)')" = "cancelled True"
api POST /v1/fine_tuning/jobs/ftjob-nope/cancel
check "cancel an unknown job: 404" test "$STATUS" = 404
api GET /v1/fine_tuning/jobs
check "job list, newest first" test "$(jget '[x["id"] for x in j["data"]]')" = "[\"$JOBQ\", \"$JOB2\", \"$JOBC\", \"$JOB1\"]"

section "concurrent streams"
cat >"$TMP/conc.py" <<'EOF'
import http.client, json, sys, threading, time
host, port, key, n, max_tokens = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
body = json.dumps({"model": "tiny", "prompt": "The keeper", "max_tokens": max_tokens,
                   "temperature": 0.7, "seed": 5, "stream": True})
conns = []
for i in range(n):
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request("POST", "/v1/completions", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    conns.append(c)
res = [None] * n
def read(i):
    r = conns[i].getresponse()
    events, first, ok = [], None, False
    if r.status != 200:
        res[i] = {"status": r.status, "body": r.read().decode()}; return
    while True:
        line = r.readline()
        if not line: break
        line = line.decode().rstrip("\n")
        if not line.startswith("data: "): continue
        t = time.monotonic()
        if line == "data: [DONE]": ok = True; break
        o = json.loads(line[6:])
        if o["choices"][0]["text"]:
            events.append(t)
    res[i] = {"status": 200, "ok": ok, "events": events, "end": time.monotonic()}
ts = [threading.Thread(target=read, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(res))
EOF
hp=${URL#http://}
python3 "$TMP/conc.py" "${hp%:*}" "${hp##*:}" "$KEY" 3 200 >"$TMP/body"
check "3 concurrent streams all complete" test "$(jget 'all(r["status"]==200 and r["ok"] and len(r["events"])>0 for r in j)')" = true
check "they interleave: every first token before the first stream ends" test "$(jget 'max(r["events"][0] for r in j) < min(r["end"] for r in j)')" = true
check "at similar rates: when the first ends, each has half its token count" test "$(jget 'all(sum(1 for t in r["events"] if t <= min(x["end"] for x in j)) * 2 >= min(len(x["events"]) for x in j if x["end"] == min(y["end"] for y in j)) for r in j)')" = true
echo "# tokens per stream: $(jget '[len(r["events"]) for r in j]')"
python3 - "${hp%:*}" "${hp##*:}" "$KEY" <<'EOF2'
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=30)
c.request("POST", "/v1/completions", json.dumps({"model": "tiny", "prompt": "The keeper", "max_tokens": 250,
          "stream": True}), {"Authorization": "Bearer " + sys.argv[3]})
r = c.getresponse()
r.readline()
c.sock.close()
EOF2
for _ in $(seq 100); do grep -q 'event=gen.cancelled' "$LOG" && break; sleep 0.05; done
check "a client that disconnects cancels its generation" grep -q 'event=gen.cancelled' "$LOG"

# a job running when the service stops resumes from its checkpoint at the next start
api POST /v1/fine_tuning/jobs -d "{\"training_file\":\"$FILE2\",\"model\":\"tiny\",\"hyperparameters\":{\"steps\":100000}}"
JOB3=$(jget 'j["id"]')
for _ in $(seq 600); do
    api GET "/v1/fine_tuning/jobs/$JOB3"
    [[ $(jget 'j["step"]') -ge 10 ]] && break
    sleep 0.05
done
stop_tg

section "queue limit and restart"
start_tg --max-queue 2 --model-idle-s 1
STEP3=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["step"])' "$TMP/models/.textgen/jobs/$JOB3.json")
first=
for _ in $(seq 600); do
    api GET "/v1/fine_tuning/jobs/$JOB3"
    if [[ $(jget 'j["status"]') == running && $(jget 'j["step"]') -gt 0 ]]; then first=$(jget 'j["step"]'); break; fi
    sleep 0.02
done
# (a fresh start would report step 1, 2, ...: steps take far longer than the 20 ms polls)
check "the interrupted job runs again, from its checkpoint (step $STEP3 -> $first)" test "${first:-0}" -ge "$STEP3" -a "$STEP3" -ge 10
api POST "/v1/fine_tuning/jobs/$JOB3/cancel"
hp=${URL#http://}
python3 "$TMP/conc.py" "${hp%:*}" "${hp##*:}" "$KEY" 8 200 >"$TMP/body"
check "beyond --max-queue: 503 queue_full, the others complete" test "$(jget 'any(r["status"]==503 and "queue_full" in r["body"] for r in j) and all(r["status"]==503 or r["ok"] for r in j)')" = true
api GET /v1/files
check "after a restart: both files listed" test "$(jget 'sorted(f["id"] for f in j["data"])')" = "$(python3 -c 'import json,sys;print(json.dumps(sorted(sys.argv[1:])))' "$FILE1" "$FILE2")"
api GET "/v1/fine_tuning/jobs/$JOB1"
check "after a restart: the succeeded job" test "$(jget 'j["status"]+" "+j["fine_tuned_model"]')" = "succeeded ft-scratch-tiny-e2e"
api GET "/v1/fine_tuning/jobs/$JOB2"
check "after a restart: the cancelled job" test "$(jget 'j["status"]')" = cancelled
api GET /v1/fine_tuning/jobs
check "after a restart: the job list in the same order" test "$(jget '[x["id"] for x in j["data"]][1:]')" = "[\"$JOBQ\", \"$JOB2\", \"$JOBC\", \"$JOB1\"]"
check "one log line per request with latency" grep -qE 'event=http.request .*status=200 ms=[0-9.]+ ' "$LOG"
for _ in $(seq 60); do grep -q 'event=model.unload model=tiny reason=idle' "$LOG" && break; sleep 0.1; done
check "an unused model is unloaded after --model-idle-s" grep -q 'event=model.unload model=tiny reason=idle' "$LOG"

finish
