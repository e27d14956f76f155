#!/usr/bin/env bash
# transcript: speech recognition on a real personad — sentences synthesized with espeak-ng (our
# speech module, through speak_tool) and a LibriVox recording (Debian's pocketsphinx-testdata),
# each mixed into an MP4 with a test-pattern video, starting at 2.0 s; upload, wait, then the
# transcript (JSON, WebVTT, SRT, the CLI), its words and timing, answers citing the time, a
# correction that replaces the corpus passages, a silent video (empty transcript), bad
# corrections, an account's own language model (a broken one falls back to the general model;
# one from asr_lm_build is used), and another account (404).
#
# Words: the general en-us model hears espeak-ng's synthetic voice poorly (about half of the
# words of the sentences below; see speak_tool hear), so the word error rate bound (<= 40%) is
# checked on the human recording, and the synthesized item must give at least half its words.
. "$(dirname "$0")/lib.sh"
: "${SPEAK_TOOL:?}" "${PERSONA:?}"

SAID="the weather was cold and windy this morning. my brother bought a new green bicycle."
"$SPEAK_TOOL" say "$TMP/said.wav" "$SAID"
ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=10 -i "$TMP/said.wav" \
    -filter_complex "[1:a]adelay=2000:all=1,apad[a]" -map 0:v -map "[a]" -t 9 \
    -c:v mpeg4 -c:a aac -ar 22050 "$TMP/said.mp4"
LIBRIVOX=/usr/share/pocketsphinx/test/data/librivox
BOOK="and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them"
ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=10 \
    -i "$LIBRIVOX/sense_and_sensibility_01_austen_64kb-0870.wav" \
    -filter_complex "[1:a]adelay=2000:all=1,apad[a]" -map 0:v -map "[a]" -t 10 \
    -c:v mpeg4 -c:a aac "$TMP/book.mp4"
ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=10 -f lavfi -i anullsrc=r=22050:cl=mono \
    -t 3 -c:v mpeg4 -c:a aac "$TMP/silent.mp4"

DATA=$TMP/data
start_personad "$DATA" --signup open --asr-threads 2
A=$(signup_login alice)
B=$(signup_login bob)
AUTH=(-H "Authorization: Bearer $A")

upload() { # FILE TITLE -> ID
    api POST "/v1/media?title=$2" "${AUTH[@]}" -H "Content-Type: video/mp4" --data-binary "@$1"
    jget 'j["id"]'
}
T0=$(date +%s.%N)
BID=$(upload "$TMP/book.mp4" austen)
ID=$(upload "$TMP/said.mp4" walk)
# Right after the upload the item is queued or processing: 409, unless it is already done.
api GET "/v1/media/$ID/transcript" "${AUTH[@]}"
check "transcript while processing: 409 (or 200 if already done)" test "$STATUS" = 409 -o "$STATUS" = 200
check "the spoken item is processed" test "$(wait_media "$A" "$ID")" = ready
echo "# processed in $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$T0" "$(date +%s.%N)") s"

check "the recording is processed" test "$(wait_media "$A" "$BID")" = ready

echo "# the transcript of the recording"
api GET "/v1/media/$BID/transcript" "${AUTH[@]}"
check "GET transcript: 200" test "$STATUS" = 200
HYP=$(jget '" ".join(s["text"] for s in j["segments"])')
echo "# heard: $HYP"
read -r ERRS WORDS < <("$SPEAK_TOOL" wer "$BOOK" "$HYP")
check "recording: WER <= 40% ($ERRS errors in $WORDS words)" test $((ERRS * 100)) -le $((WORDS * 40))
FIRST=$(jget 'j["segments"][0]["words"][0]["start_ms"]')
# The clip itself opens with a little silence, so its first word comes a bit after 2.0 s.
check "recording: the first word starts after 2.0 s, before 3.0 s ($FIRST ms)" test "$FIRST" -ge 1800 -a "$FIRST" -le 3000

echo "# the transcript of the synthesized sentences"
api GET "/v1/media/$ID/transcript" "${AUTH[@]}"
check "GET transcript: 200" test "$STATUS" = 200
cp "$TMP/body" "$TMP/transcript.json"
HYP=$(jget '" ".join(s["text"] for s in j["segments"])')
echo "# heard: $HYP"
HEARD=$(python3 -c '
import sys
said = [w.strip(".") for w in sys.argv[1].split()]
heard = sys.argv[2].split()
print(sum(1 for w in said if w in heard))' "$SAID" "$HYP")
N=$(wc -w <<<"$SAID")
check "synthesized: at least half the words heard ($HEARD of $N)" test $((HEARD * 2)) -ge "$N"
read -r ERRS WORDS < <("$SPEAK_TOOL" wer "$SAID" "$HYP")
echo "# synthesized: WER $ERRS/$WORDS"
FIRST=$(jget 'j["segments"][0]["words"][0]["start_ms"]')
check "synthesized: the first word starts near 2.0 s ($FIRST ms)" test "$FIRST" -ge 1500 -a "$FIRST" -le 2500
check "segments have spans, confidences and timed words" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["media_id"] > 0 and j["corrected"] is False
for s in j["segments"]:
    assert 0 <= s["start_ms"] <= s["end_ms"] and 0 <= s["confidence"] <= 1 and s["text"]
    for w in s["words"]:
        assert s["start_ms"] <= w["start_ms"] <= w["end_ms"] <= s["end_ms"] and w["word"]
' "$TMP/transcript.json"

api GET "/v1/media/$ID/transcript?format=vtt" "${AUTH[@]}"
check "vtt: 200" test "$STATUS" = 200
check "vtt: a WEBVTT file with a cue from 00:00:01 or 00:00:02" \
    grep -qE '^00:00:0[12]\.[0-9]{3} --> ' "$TMP/body"
check "vtt: starts with WEBVTT" test "$(head -c 6 "$TMP/body")" = WEBVTT
CT=$(curl -s -o /dev/null -w '%{content_type}' "${AUTH[@]}" "$PD_URL/v1/media/$ID/transcript?format=vtt")
check "vtt: content type text/vtt ($CT)" test "${CT%%;*}" = text/vtt
api GET "/v1/media/$ID/transcript?format=srt" "${AUTH[@]}"
check "srt: numbered cue with a comma timestamp" grep -qE '^00:00:0[12],[0-9]{3} --> ' "$TMP/body"
check "srt: first line is 1" test "$(head -1 "$TMP/body" | tr -d '\r')" = 1
CT=$(curl -s -o /dev/null -w '%{content_type}' "${AUTH[@]}" "$PD_URL/v1/media/$ID/transcript?format=srt")
check "srt: content type application/x-subrip ($CT)" test "${CT%%;*}" = application/x-subrip
api GET "/v1/media/$ID/transcript?format=doc" "${AUTH[@]}"
check "unknown format: 400" test "$STATUS" = 400

echo "# the CLI"
export PERSONA_SERVER=$PD_URL PERSONA_TOKEN=$A PERSONA_CONFIG=$TMP/cli.conf
OUT=$("$PERSONA" transcript "$ID")
check "persona transcript: MM:SS lines ($OUT)" grep -qE '^00:0[12]  [a-z]' <<<"$OUT"
check "persona transcript --format vtt" bash -c "\"\$PERSONA\" transcript $ID --format vtt | head -1 | grep -q WEBVTT"
check "persona transcript --format srt" bash -c "\"\$PERSONA\" transcript $ID --format srt | head -1 | grep -q '^1'"
check "persona transcript --format json" bash -c "\"\$PERSONA\" transcript $ID --format json | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"segments\"]'"
set +e
"$PERSONA" transcript "$ID" --format doc >/dev/null 2>&1
check "persona transcript --format doc: usage error (2)" test $? = 2
PERSONA_TOKEN=$B "$PERSONA" transcript "$ID" >/dev/null 2>"$TMP/cli.err"
check "persona transcript of another account's item fails (1)" test $? = 1
set -e

ask() { # TEXT -> the answer
    local body qid st
    body=$(python3 -c 'import json,sys; print(json.dumps({"text": sys.argv[1]}))' "$1")
    api POST /v1/questions "${AUTH[@]}" -d "$body"
    qid=$(jget 'j.get("id")')
    for _ in $(seq 300); do
        api GET "/v1/questions/$qid" "${AUTH[@]}"
        st=$(jget 'j["status"]')
        [[ $st == answered || $st == failed ]] && break
        sleep 0.05
    done
    jget 'j.get("answer")'
}
echo "# answers cite the time"
HEARD_WORD=$(python3 -c '
import sys
stop = set("the a and was this my new".split())
words = [w for w in sys.argv[1].split() if w not in stop and len(w) > 3]
print(words[0] if words else "")' "$HYP")
ANS=$(ask "what about $HEARD_WORD?")
echo "# answer: $ANS"
check "the answer cites the time in the item (At 00:0x in \"walk\")" grep -qE 'At 00:0[0-9] in "walk", you said' <<<"$ANS"

echo "# a correction"
api PUT "/v1/media/$ID/transcript" "${AUTH[@]}" \
    -d '{"segments":[{"start_ms":2000,"end_ms":4500,"text":"the zebra painted a violet lighthouse"},{"start_ms":5000,"end_ms":8000,"text":"my  brother\nbought a green bicycle"}]}'
check "PUT segments: 200" test "$STATUS" = 200
check "PUT answers the corrected transcript" test "$(jget 'j["corrected"]')/$(jget 'j["segments"][1]["text"]')" = "true/my brother bought a green bicycle"
api GET "/v1/media/$ID/transcript" "${AUTH[@]}"
check "GET after PUT: corrected, 2 segments" test "$(jget 'j["corrected"]')/$(jget 'len(j["segments"])')" = true/2
ANS=$(ask "who painted the lighthouse?")
check "ask finds the corrected words, cited at 00:02 ($ANS)" grep -qE 'At 00:02 in "walk", you said: the zebra painted a violet lighthouse' <<<"$ANS"
api PUT "/v1/media/$ID/transcript" "${AUTH[@]}" \
    -d '{"segments":[{"start_ms":2000,"end_ms":4500,"text":"the zebra painted a violet lighthouse"},{"start_ms":3723000,"end_ms":3725000,"text":"an hour later the kettle whistled"}]}'
ANS=$(ask "when did the kettle whistle?")
check "a time past an hour is cited as H:MM:SS ($ANS)" grep -q 'At 1:02:03 in "walk", you said: an hour later the kettle whistled' <<<"$ANS"
ANS=$(ask "what about the weather and the windy morning?")
check "the recognized passages were replaced ($ANS)" bash -c "! grep -qi 'windy' <<<\"\$1\"" _ "$ANS"
api PUT "/v1/media/$ID/transcript" "${AUTH[@]}" -d '{"text":"one paragraph about a quiet harbour"}'
check "PUT text: one segment spanning the item (0..$(jget 'j["segments"][0]["end_ms"]') ms)" \
    test "$(jget 'len(j["segments"])')/$(jget 'j["segments"][0]["start_ms"]')/$(jget 'j["segments"][0]["end_ms"] >= 8500')" = 1/0/true
ANS=$(ask "the quiet harbour")
check "ask finds the text correction" grep -q "quiet harbour" <<<"$ANS"
ANS=$(ask "zebra lighthouse")
check "the segment correction's passages were replaced" grep -q "nothing about that" <<<"$ANS"

echo "# bad corrections: 400, transcript unchanged"
bad_put() { # DESCRIPTION BODY
    api PUT "/v1/media/$ID/transcript" "${AUTH[@]}" -d "$2"
    check "PUT $1: 400 ($(head -c 160 "$TMP/body"))" test "$STATUS" = 400
}
bad_put "empty body" ''
bad_put "truncated JSON" '{"segments":[{"start_ms":1'
bad_put "not an object" '[1,2]'
bad_put "both segments and text" '{"segments":[],"text":"x"}'
bad_put "neither" '{}'
bad_put "segments not an array" '{"segments":"x"}'
bad_put "negative start" '{"segments":[{"start_ms":-1,"end_ms":5,"text":"x"}]}'
bad_put "end before start" '{"segments":[{"start_ms":10,"end_ms":5,"text":"x"}]}'
bad_put "out of order" '{"segments":[{"start_ms":10,"end_ms":20,"text":"x"},{"start_ms":5,"end_ms":20,"text":"y"}]}'
bad_put "blank text" '{"segments":[{"start_ms":0,"end_ms":5,"text":" \n "}]}'
bad_put "text not a string" '{"text":5}'
bad_put "missing text" '{"segments":[{"start_ms":0,"end_ms":5}]}'
bad_put "huge end" '{"segments":[{"start_ms":0,"end_ms":99999999999999,"text":"x"}]}'
bad_put "NUL in text" '{"text":"a\u0000b"}'
LONGSEG=$(python3 -c 'import json; print(json.dumps({"segments":[{"start_ms":0,"end_ms":1,"text":"w "*2001}]}))')
bad_put "a 4 kB segment" "$LONGSEG"
python3 -c 'import json; print(json.dumps({"segments":[{"start_ms":i,"end_ms":i,"text":"a"} for i in range(10001)]}))' >"$TMP/many.json"
api PUT "/v1/media/$ID/transcript" "${AUTH[@]}" --data-binary "@$TMP/many.json"
check "PUT 10001 segments: 400 or 413 ($STATUS)" test "$STATUS" = 400 -o "$STATUS" = 413
RANDOM_BODY=$(head -c 2000 /dev/urandom | base64 -w0)
bad_put "random bytes" "$RANDOM_BODY"
api GET "/v1/media/$ID/transcript" "${AUTH[@]}"
check "after the bad PUTs the text correction stands" test "$(jget 'j["segments"][0]["text"]')" = "one paragraph about a quiet harbour"

echo "# a silent video"
SID=$(upload "$TMP/silent.mp4" silent)
check "the silent item is processed" test "$(wait_media "$A" "$SID")" = ready
api GET "/v1/media/$SID/transcript" "${AUTH[@]}"
check "silent video: 200 with an empty transcript" test "$STATUS/$(jget 'len(j["segments"])')" = 200/0
api GET "/v1/media/$SID/transcript?format=vtt" "${AUTH[@]}"
check "silent video: an empty WEBVTT file" test "$(head -1 "$TMP/body" | tr -d '\r')/$(grep -c -- '-->' "$TMP/body" || true)" = WEBVTT/0

echo "# an account's own language model"
api GET /v1/me -H "Authorization: Bearer $B"
BOB_ID=$(jget 'j["account_id"]')
mkdir -p "$DATA/lm/$BOB_ID"
echo "this is not a language model" >"$DATA/lm/$BOB_ID/lm.arpa"
api POST "/v1/media?title=walk" -H "Authorization: Bearer $B" -H "Content-Type: video/mp4" --data-binary "@$TMP/said.mp4"
BID1=$(jget 'j["id"]')
check "a broken account model: the item is still processed" test "$(wait_media "$B" "$BID1")" = ready
check "... with the general model, logged" grep -q "event=jobs.asr_account_lm account=$BOB_ID .*fallback=general" "$PD_LOG"
api GET "/v1/media/$BID1/transcript" -H "Authorization: Bearer $B"
check "... and a transcript" test "$(jget 'len(j["segments"])')" -ge 1
# What asr_lm_build writes (lm.bin + dict) is what personad loads first.
C=$(signup_login carol)
api GET /v1/me -H "Authorization: Bearer $C"
CAROL_ID=$(jget 'j["account_id"]')
"$SPEAK_TOOL" lm "$DATA/lm/$CAROL_ID" "$SAID Zorblat rode the bicycle."
api POST "/v1/media?title=walk" -H "Authorization: Bearer $C" -H "Content-Type: video/mp4" --data-binary "@$TMP/said.mp4"
CID=$(jget 'j["id"]')
check "asr_lm_build's model: processed" test "$(wait_media "$C" "$CID")" = ready
check "... loaded (lm.bin), logged" grep -q "event=jobs.asr_account_lm account=$CAROL_ID lm=lm.bin loaded=1" "$PD_LOG"
check "... and used for the item" grep -q "event=jobs.transcribe media=$CID .*lm=account" "$PD_LOG"
api GET "/v1/media/$CID/transcript" -H "Authorization: Bearer $C"
check "... and a transcript" test "$(jget 'len(j["segments"])')" -ge 1

echo "# personal vocabulary, learned from the account's own text items"
# The names are made up: the general model cannot know them (0 or 1 of 3 heard). Dave writes
# about them in text items; his next recording is transcribed with the model personad built
# from those texts (<data_dir>/lm/<id>/, rebuilt when the texts change) and hears them.
NAMES_SAID="please send the report to marbeck before noon. tobrin will call you about the garden tomorrow. we bought a new galvex for the kitchen."
"$SPEAK_TOOL" say "$TMP/names.wav" "$NAMES_SAID"
ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=10 -i "$TMP/names.wav" \
    -filter_complex "[1:a]adelay=1000:all=1,apad[a]" -map 0:v -map "[a]" -t 14 \
    -c:v mpeg4 -c:a aac -ar 22050 "$TMP/names.mp4"
names_heard() { # TOKEN ID -> how many of the three names the transcript has
    api GET "/v1/media/$2/transcript?format=vtt" -H "Authorization: Bearer $1"
    local n=0 w
    for w in marbeck tobrin galvex; do grep -qi "$w" "$TMP/body" && n=$((n + 1)); done
    echo "$n"
}
D=$(signup_login dave)
api GET /v1/me -H "Authorization: Bearer $D"
DAVE_ID=$(jget 'j["account_id"]')
api POST "/v1/media?title=before" -H "Authorization: Bearer $D" -H "Content-Type: video/mp4" --data-binary "@$TMP/names.mp4"
DID0=$(jget 'j["id"]')
check "names, general model: processed" test "$(wait_media "$D" "$DID0")" = ready
BEFORE=$(names_heard "$D" "$DID0")
check "... no personal model without texts" test ! -e "$DATA/lm/$DAVE_ID/lm.bin"
for t in "Marbeck is my manager. I sent the report to Marbeck yesterday. Marbeck liked it." \
         "Tobrin is my brother. Tobrin will call you. Tobrin lives near the garden." \
         "The Galvex is a coffee machine. Our new Galvex makes good coffee. We bought a Galvex."; do
    api POST "/v1/media?title=notes" -H "Authorization: Bearer $D" -H "Content-Type: text/plain" --data-binary "$t"
done
api POST "/v1/media?title=after" -H "Authorization: Bearer $D" -H "Content-Type: video/mp4" --data-binary "@$TMP/names.mp4"
DID1=$(jget 'j["id"]')
check "names, personal model: processed" test "$(wait_media "$D" "$DID1")" = ready
check "... the model was built from dave's texts, logged" grep -q "event=jobs.account_lm account=$DAVE_ID texts=3" "$PD_LOG"
check "... and used" grep -q "event=jobs.transcribe media=$DID1 .*lm=account" "$PD_LOG"
AFTER=$(names_heard "$D" "$DID1")
echo "# names heard: general model $BEFORE of 3, dave's own model $AFTER of 3"
check "names heard: at most 1 of 3 before ($BEFORE), at least 2 after ($AFTER)" \
    test "$BEFORE" -le 1 -a "$AFTER" -ge 2
api POST "/v1/media?title=again" -H "Authorization: Bearer $D" -H "Content-Type: video/mp4" --data-binary "@$TMP/names.mp4"
DID2=$(jget 'j["id"]')
check "unchanged texts: processed" test "$(wait_media "$D" "$DID2")" = ready
check "... without rebuilding the model" test "$(grep -c "event=jobs.account_lm account=$DAVE_ID " "$PD_LOG")" = 1

echo "# no transcript and other accounts"
api POST "/v1/media?title=note" "${AUTH[@]}" -H "Content-Type: text/plain" --data-binary "a note"
TID=$(jget 'j["id"]')
api GET "/v1/media/$TID/transcript" "${AUTH[@]}"
check "a text item: 404" test "$STATUS" = 404
api GET "/v1/media/999999/transcript" "${AUTH[@]}"
check "no such item: 404" test "$STATUS" = 404
api GET "/v1/media/$ID/transcript" -H "Authorization: Bearer $B"
check "bob reads alice's transcript: 404" test "$STATUS" = 404
api PUT "/v1/media/$ID/transcript" -H "Authorization: Bearer $B" -d '{"text":"bob was here"}'
check "bob corrects alice's transcript: 404" test "$STATUS" = 404
api GET "/v1/media/$ID/transcript"
check "no token: 401" test "$STATUS" = 401
api GET "/v1/media/$ID/transcript" "${AUTH[@]}"
check "alice's transcript untouched by bob" test "$(jget 'j["segments"][0]["text"]')" = "one paragraph about a quiet harbour"
api DELETE "/v1/media/$ID" "${AUTH[@]}"
api GET "/v1/media/$ID/transcript" "${AUTH[@]}"
check "deleted item: 404" test "$STATUS" = 404
ANS=$(ask "the quiet harbour")
check "a deleted item's passages are gone" grep -q "nothing about that" <<<"$ANS"

finish
