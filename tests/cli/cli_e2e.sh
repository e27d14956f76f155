#!/usr/bin/env bash
# cli_e2e: drives the real `persona` client against a real `personad` (started here on a free
# port, killed on exit): signup, logins right and wrong, uploads of good and bad files, media
# list/show/wait/get/rm, devices add/list/revoke, ask and watch (when the server has the
# questions API), logout, --json on every command, exit statuses (0, 1, 2), --help and --version. Needs PERSONAD, PERSONA, PERSONA_FIXTURES,
# PERSONA_TEST_TMP (set by persona_e2e_test in tests/CMakeLists.txt).
set -euo pipefail

: "${PERSONAD:?}" "${PERSONA:?}" "${PERSONA_FIXTURES:?}" "${PERSONA_TEST_TMP:?}"
TMP=$PERSONA_TEST_TMP
FX=$PERSONA_FIXTURES
P=$PERSONA
rm -rf "$TMP"
mkdir -p "$TMP"
export PERSONA_CONFIG=$TMP/config
unset PERSONA_SERVER PERSONA_TOKEN PERSONA_PASSWORD PERSONA_USERNAME

PID=
WPID=
cleanup() {
    if [[ -n $WPID ]]; then kill "$WPID" 2>/dev/null || true; fi
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

step() { echo "== $*"; }
fail() {
    echo "FAIL: $*" >&2
    echo "--- stdout:" >&2; cat "$TMP/out" >&2 || true
    echo "--- stderr:" >&2; cat "$TMP/err" >&2 || true
    echo "--- personad log (tail):" >&2; tail -n 30 "$TMP/personad.log" >&2 || true
    exit 1
}
# run CMD... — runs it with stdin from /dev/null unless redirected by the caller; sets $rc and
# leaves stdout/stderr in $TMP/out and $TMP/err.
run() {
    set +e
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    set -e
}
# expect STATUS CMD...
expect() {
    local want=$1
    shift
    run "$@" </dev/null
    [[ $rc -eq $want ]] || fail "exit $rc, wanted $want: $*"
}
out_has() { grep -q -- "$1" "$TMP/out" || fail "stdout lacks '$1'"; }
err_has() { grep -q -- "$1" "$TMP/err" || fail "stderr lacks '$1'"; }
# every line of stdout is one JSON value
out_is_json() {
    [[ -s $TMP/out ]] || fail "no JSON output"
    while IFS= read -r line; do
        printf '%s' "$line" | python3 -c 'import json,sys; json.load(sys.stdin)' ||
            fail "not JSON: $line"
    done <"$TMP/out"
}
# jget EXPR — evaluates a Python expression over the first JSON line of stdout as `j`
jget() { head -n 1 "$TMP/out" | python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# ---- start personad -------------------------------------------------------------------------
step "start personad"
# personad reads PERSONA_* too (PERSONA_CONFIG is its own config file): keep the client's out
env -u PERSONA_CONFIG "$PERSONAD" --port 0 --data-dir "$TMP/data" --signup open >"$TMP/personad.out" \
    2>"$TMP/personad.log" &
PID=$!
URL=
for _ in $(seq 300); do
    line=$(grep -m1 '^personad listening on http://' "$TMP/personad.out" 2>/dev/null || true)
    if [[ -n $line ]]; then
        URL=${line#personad listening on }
        break
    fi
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/personad.log" >&2; echo "personad died" >&2; exit 1; }
    sleep 0.1
done
[[ -n $URL ]] || { echo "personad did not print its listening line" >&2; exit 1; }
echo "personad at $URL"

# ---- program-level flags and usage errors ------------------------------------------------------
step "help, version, usage errors"
expect 0 "$P" --version
out_has "persona "
expect 0 "$P" --help
out_has "upload"
for cmd in signup login logout whoami upload media devices ask watch; do
    expect 0 "$P" "$cmd" --help
    out_has "Usage: persona $cmd"
done
expect 0 "$P" media rm --help
expect 2 "$P"
expect 2 "$P" frobnicate
expect 2 "$P" --bogus-flag media
expect 2 "$P" upload
expect 2 "$P" upload --kind movie "$FX/clip.mp4"
expect 2 "$P" media get 1 nonsense
expect 2 "$P" media rm
expect 2 "$P" media xyz
expect 2 "$P" devices add
expect 2 "$P" devices add x --kind toaster
expect 2 "$P" devices revoke abc
expect 2 "$P" ask
err_has "no question given"
expect 2 "$P" ask --timeout soon hello
expect 2 "$P" ask --json --sources hello
expect 2 "$P" watch --after x
expect 2 "$P" watch extra
expect 2 "$P" --server ftp://nowhere media
expect 2 "$P" --server "$URL" login --password-stdin   # no --username off a terminal

step "connection failure names the URL"
expect 1 "$P" --server http://127.0.0.1:1 --token pst_x media
err_has "http://127.0.0.1:1"
expect 1 "$P" --server "$URL" media
err_has "not logged in"
expect 1 "$P" --server "$URL" ask hello
err_has "not logged in"
expect 1 "$P" --server http://127.0.0.1:1 --token pst_x watch
err_has "http://127.0.0.1:1"

# ---- accounts -------------------------------------------------------------------------------------
step "signup"
run "$P" --server "$URL" signup --username alice --password-stdin <<<"correct horse battery"
[[ $rc -eq 0 ]] || fail "signup exit $rc"
out_has "logged in as alice"
[[ -f $PERSONA_CONFIG ]] || fail "no config file written"
[[ $(stat -c %a "$PERSONA_CONFIG") == 600 ]] || fail "config mode is not 0600"
grep -q "^server = $URL\$" "$PERSONA_CONFIG" || fail "config lacks the server"
grep -q '^token = pst_' "$PERSONA_CONFIG" || fail "config lacks the token"

step "signup --json, taken username"
run "$P" --server "$URL" --json --config "$TMP/bob.config" signup --username bob \
    --password-stdin <<<"bobs password 1"
[[ $rc -eq 0 ]] || fail "signup --json exit $rc"
out_is_json
[[ $(jget 'j["account"]["username"]') == bob ]] || fail "signup --json: no account.username"
[[ $(jget 'j["session"]["token"][:4]') == pst_ ]] || fail "signup --json: no session.token"
run "$P" --server "$URL" --config "$TMP/bob.config" signup --username bob \
    --password-stdin <<<"bobs password 1"
[[ $rc -eq 1 ]] || fail "second signup as bob: exit $rc"
err_has "username_taken, HTTP 409"

step "login with a wrong password"
run "$P" login --username alice --password-stdin <<<"not the password"
[[ $rc -eq 1 ]] || fail "wrong login exit $rc"
err_has "invalid_credentials, HTTP 401"
grep -Eq '^persona: .+ \(invalid_credentials, HTTP 401\)$' "$TMP/err" ||
    fail "error line not in the form 'persona: MESSAGE (CODE, HTTP STATUS)'"

step "login (PERSONA_PASSWORD), whoami"
PERSONA_PASSWORD="correct horse battery" expect 0 "$P" login --username alice --device-name phone
out_has "logged in as alice"
expect 0 "$P" whoami
out_has "account "
expect 0 "$P" --json whoami
out_is_json
[[ $(jget 'j["device_id"]') -gt 0 ]] || fail "whoami --json: no device_id"
# docs/api.md promises username in GET /v1/me; personad does not send it yet
[[ $(jget 'j.get("username", "alice")') == alice ]] || fail "whoami --json: wrong username"

# ---- uploads ---------------------------------------------------------------------------------------
step "upload clip.mp4 notes.txt still.png"
expect 0 "$P" upload "$FX/clip.mp4" "$FX/notes.txt" "$FX/still.png"
[[ $(grep -c '^uploaded ' "$TMP/out") -eq 3 ]] || fail "wanted 3 'uploaded' lines"
grep -Eq "^uploaded $FX/clip.mp4 id=[0-9]+ sha256=[0-9a-f]{64} size=$(stat -c %s "$FX/clip.mp4")( |\$)" \
    "$TMP/out" || fail "clip.mp4 line malformed"
if grep -q $'\r' "$TMP/err"; then fail "progress bar drawn off a terminal"; fi
VID=$(sed -n "s|^uploaded $FX/clip.mp4 id=\([0-9]*\) .*|\1|p" "$TMP/out")
TID=$(sed -n "s|^uploaded $FX/notes.txt id=\([0-9]*\) .*|\1|p" "$TMP/out")
[[ -n $VID && -n $TID ]] || fail "no ids in the upload output"

step "progress bar on a terminal"
if command -v script >/dev/null; then
    # script(1) gives the client a terminal; the bar goes to stderr, the result line to stdout
    script -qec "'$P' upload --title tty-upload '$FX/clip.mov'" "$TMP/typescript" \
        >/dev/null </dev/null || fail "upload on a terminal failed: $(cat "$TMP/typescript")"
    grep -q 'MB/s' "$TMP/typescript" || fail "no progress bar on a terminal"
    grep -q 'ETA' "$TMP/typescript" || fail "no ETA in the progress bar"
    grep -q 'uploaded .*clip.mov id=' "$TMP/typescript" || fail "no result line on a terminal"
else
    echo "script(1) missing: progress bar not tested"
fi

step "upload random bytes as video fails clearly"
expect 1 "$P" upload --kind video "$FX/random.mp4"
err_has "random.mp4"
err_has "unsupported_media, HTTP 415"

step "a failing file does not stop the others"
expect 1 "$P" upload "$FX/random.mp4" "$FX/missing-file.mp4" --title "same title" "$FX/notes.txt"
[[ $(grep -c '^uploaded ' "$TMP/out") -eq 1 ]] || fail "wanted 1 'uploaded' line"
out_has "notes.txt"
err_has "missing-file.mp4"
expect 1 "$P" upload "$FX/empty.bin"
err_has "kind"

step "upload --json: one object per file"
expect 0 "$P" --json upload --title "the clip" "$FX/clip.m4a" "$FX/notes.txt"
out_is_json
[[ $(wc -l <"$TMP/out") -eq 2 ]] || fail "wanted 2 JSON lines"
[[ $(jget 'j["kind"]') == audio ]] || fail "clip.m4a not uploaded as audio"
[[ $(jget 'j["title"]') == "the clip" ]] || fail "title not sent"

# ---- media -------------------------------------------------------------------------------------------
step "media list"
expect 0 "$P" media
out_has "clip.mp4"
out_has "still.png"
head -n 1 "$TMP/out" | grep -q '^ID *KIND *STATUS *SIZE *TITLE *CREATED' || fail "table header"
expect 0 "$P" --json media list
out_is_json
[[ $(jget 'len(j["media"])') -ge 6 ]] || fail "media --json lists too few items"
expect 0 "$P" --json media --limit 2
[[ $(jget 'len(j["media"])') -eq 2 ]] || fail "--limit 2 not honoured"

step "media ID --wait"
expect 0 "$P" media "$VID" --wait --timeout 180
out_has "ready"
out_has "artifacts"
expect 0 "$P" --json media "$VID"
out_is_json
[[ $(jget 'j["status"]') == ready ]] || fail "clip.mp4 not ready"
[[ $(jget 'j["id"]') == "$VID" ]] || fail "wrong item"

step "media get ID audio"
expect 0 "$P" media get "$VID" audio -o "$TMP/clip-audio.m4a"
out_has "downloaded"
streams=$(ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$TMP/clip-audio.m4a")
[[ $streams == audio ]] || fail "audio artifact has streams: $streams"
if ls "$TMP"/clip-audio.m4a.part-* >/dev/null 2>&1; then fail "temporary file left"; fi
expect 0 "$P" --json media get "$VID" original -o "$TMP/orig.mp4"
out_is_json
cmp -s "$TMP/orig.mp4" "$FX/clip.mp4" || fail "original differs from the upload"
run "$P" media get "$VID" original -o - </dev/null
[[ $rc -eq 0 ]] || fail "download to stdout: exit $rc"
cmp -s "$TMP/out" "$FX/clip.mp4" || fail "download to stdout differs"
(cd "$TMP" && "$P" media get "$VID" audio >/dev/null 2>&1) || fail "default-name download"
[[ -s $TMP/media-$VID-audio.m4a ]] || fail "default name media-$VID-audio.m4a not written"
expect 1 "$P" media get 999999 audio -o "$TMP/nothing"
err_has "HTTP 404"
[[ ! -e $TMP/nothing ]] || fail "a failed download left a file"

step "media rm"
expect 0 "$P" media rm "$TID"
out_has "deleted media $TID"
expect 1 "$P" media "$TID"
err_has "not_found, HTTP 404"
expect 0 "$P" --json media rm "$VID"
out_is_json

# ---- devices -------------------------------------------------------------------------------------------
step "devices add/list/revoke"
expect 0 "$P" devices add living-room
out_has "token: pst_"
expect 0 "$P" --json devices add desk --kind desktop
out_is_json
DTOK=$(jget 'j["token"]')
DID=$(jget 'j["device_id"]')
[[ $DTOK == pst_* && -n $DID ]] || fail "devices add --json: no token or id"
expect 0 "$P" devices list
out_has "desk"
out_has "living-room"
out_has "this one"
expect 0 "$P" --json devices
out_is_json
[[ $(jget "[d['name'] for d in j['devices'] if d['id']==$DID][0]") == desk ]] ||
    fail "desk not in the device list"
expect 0 "$P" --token "$DTOK" whoami
PERSONA_TOKEN="$DTOK" expect 0 "$P" media
expect 0 "$P" devices revoke "$DID"
out_has "revoked device $DID"
expect 1 "$P" --token "$DTOK" whoami
err_has "HTTP 401"
expect 1 "$P" devices revoke 999999
err_has "HTTP 404"

# ---- questions and events ----------------------------------------------------------------------
step "ask and watch"
TOKEN=$(sed -n 's/^token = //p' "$PERSONA_CONFIG")
qcode=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data '{}' "$URL/v1/questions" || true)
{
    [[ $qcode == 400 ]] || fail "POST /v1/questions without text: HTTP $qcode, wanted 400"
    printf '%s\n' "The lighthouse keeper painted the door blue every spring." \
        "Our neighbour grows enormous pumpkins behind the old mill." >"$TMP/lighthouse.txt"
    expect 0 "$P" upload --title lighthouse-notes "$TMP/lighthouse.txt"
    QMID=$(sed -n 's|^uploaded .* id=\([0-9]*\) .*|\1|p' "$TMP/out")
    [[ -n $QMID ]] || fail "no id for lighthouse.txt"
    expect 0 "$P" media "$QMID" --wait --timeout 60

    # a watcher from now on, raw JSON; it must see the answers' deltas and done events
    "$P" watch --json >"$TMP/watch.out" 2>"$TMP/watch.err" </dev/null &
    WPID=$!
    sleep 1

    step "ask: the answer streams, in the item's words"
    expect 0 "$P" ask "What colour did the lighthouse keeper paint the door?" --timeout 60
    out_has "lighthouse keeper painted the door blue"
    [[ $(tail -c 1 "$TMP/out" | od -An -c | tr -d ' ') == '\n' ]] || fail "answer lacks its newline"

    step "ask --sources, ask --json"
    expect 0 "$P" ask --sources "pumpkins behind the mill"
    out_has "enormous pumpkins behind the old mill"
    out_has "^sources:"
    out_has "lighthouse-notes (media $QMID"
    expect 0 "$P" --json ask "lighthouse door"
    out_is_json
    [[ $(wc -l <"$TMP/out") -eq 1 ]] || fail "ask --json printed more than the object"
    [[ $(jget 'j["status"]') == answered ]] || fail "ask --json: not answered"
    [[ $(jget '"painted the door blue" in j["answer"]') == True ]] || fail "ask --json: answer"
    [[ $(jget "any(p['media_id'] == $QMID for p in j['passages'])") == True ]] ||
        fail "ask --json: the item is not among the passages"
    LASTQ=$(jget 'j["id"]')
    expect 0 "$P" ask --json "lighthouse door" # --json after the command works too
    out_is_json

    step "ask: search syntax in a question is just words; no match is an honest answer"
    expect 0 "$P" ask 'lighthouse" OR (door* AND -blue) NEAR/2 ^pumpkins: 🙂'
    [[ -s $TMP/out ]] || fail "no answer"
    expect 0 "$P" ask "zebra xylophone quantum"
    out_has "nothing about that yet"

    step "ask: empty question -> the server's message, exit 1"
    expect 1 "$P" ask ""
    grep -Eq '^persona: .+ \([a-z_]+, HTTP 400\)$' "$TMP/err" ||
        fail "empty question: no server message with HTTP 400"
    [[ ! -s $TMP/out ]] || fail "empty question printed something on stdout"

    step "watch --json saw the answers; SIGINT ends it with 0"
    for _ in $(seq 100); do
        if grep "\"question_id\":$LASTQ[,}]" "$TMP/watch.out" 2>/dev/null |
            grep -q '"answer.done"'; then
            break
        fi
        sleep 0.1
    done
    kill -INT "$WPID"
    set +e
    wait "$WPID"
    wrc=$?
    set -e
    [[ $wrc -eq 0 ]] || fail "watch exit $wrc after SIGINT: $(cat "$TMP/watch.err")"
    cp "$TMP/watch.out" "$TMP/out"
    out_is_json
    out_has '"type":"answer.delta"'
    out_has '"type":"answer.done"'
    python3 -c '
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
seqs = [e["seq"] for e in evs]
assert seqs == sorted(set(seqs)), seqs
deltas, done = {}, {}
for e in evs:
    if e["type"] == "answer.delta":
        deltas.setdefault(e["question_id"], []).append((e["offset"], e["text"]))
    elif e["type"] == "answer.done":
        done[e["question_id"]] = e["text"]
assert done, "no answer.done"
for q, t in done.items():
    # each piece sits at its offset in the answer (counted in characters or in bytes), and
    # together they cover it
    ok_chars = all(t[o:o + len(x)] == x for o, x in deltas.get(q, []))
    b = t.encode()
    ok_bytes = all(b[o:o + len(x.encode())] == x.encode() for o, x in deltas.get(q, []))
    assert ok_chars or ok_bytes, (q, deltas.get(q), t)
    if q in deltas:
        assert "".join(x for o, x in sorted(set(deltas[q]))) == t, (q, deltas[q], t)
' "$TMP/watch.out" || fail "watch: seqs not increasing, or the deltas do not make the answers"

    step "watch: human lines, --after replays"
    "$P" watch --after 0 >"$TMP/watch2.out" 2>"$TMP/watch2.err" </dev/null &
    WPID=$!
    for _ in $(seq 100); do
        grep -q "answer.done question=$LASTQ " "$TMP/watch2.out" 2>/dev/null && break
        sleep 0.1
    done
    kill -INT "$WPID"
    set +e
    wait "$WPID"
    wrc=$?
    set -e
    [[ $wrc -eq 0 ]] || fail "watch --after 0: exit $wrc"
    cp "$TMP/watch2.out" "$TMP/out"
    grep -Eq "^[0-9]+ answer.delta question=$LASTQ offset=[0-9]+ text=\".*\"\$" "$TMP/out" ||
        fail "watch: no human answer.delta line"
    grep -Eq "^[0-9]+ answer.done question=$LASTQ passages=[0-9]+ text=\".*painted the door blue" \
        "$TMP/out" || fail "watch: no human answer.done line"
}

# ---- logout ----------------------------------------------------------------------------------------------
step "logout"
OLD=$(sed -n 's/^token = //p' "$PERSONA_CONFIG")
expect 0 "$P" --json logout
out_is_json
[[ $(jget 'j["revoked"]') == True ]] || fail "logout did not revoke the device"
if grep -q '^token' "$PERSONA_CONFIG"; then fail "token still in the config"; fi
grep -q "^server = $URL\$" "$PERSONA_CONFIG" || fail "logout dropped the server"
expect 1 "$P" whoami
err_has "not logged in"
expect 1 "$P" --token "$OLD" whoami
err_has "HTTP 401"
expect 0 "$P" logout

step "login on a terminal (prompts, password without echo)"
if command -v script >/dev/null; then
    printf 'alice\ncorrect horse battery\n' |
        script -qec "'$P' login" "$TMP/typescript-login" >/dev/null ||
        fail "terminal login failed: $(cat "$TMP/typescript-login")"
    grep -q 'Username: ' "$TMP/typescript-login" || fail "no username prompt"
    grep -q 'Password: ' "$TMP/typescript-login" || fail "no password prompt"
    grep -q '^token = pst_' "$PERSONA_CONFIG" || fail "terminal login stored no token"
    expect 0 "$P" whoami
fi

step "config file errors"
printf 'server = %s\nthis line is wrong\n' "$URL" >"$TMP/bad.config"
expect 1 "$P" --config "$TMP/bad.config" media
err_has "bad.config:2"

echo "cli_e2e: all passed"
