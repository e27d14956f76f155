#!/usr/bin/env bash
# tts: speech synthesis over a real personad — GET /v1/voice shows the defaults and the voice
# list; PUT /v1/voice refuses bad values with 400 and stores good ones for that account only;
# POST /v1/tts gives WAV (RIFF, duration > 0 per ffprobe) and Opus in Ogg (OggS, codec opus per
# ffprobe, same length); a faster rate gives shorter audio; parallel requests all succeed; SSML breaks lengthen it and markup
# outside the subset is a 400; too long text is 413; the CLI's `persona voice` and `persona say`
# do the same from the command line.
source "$(dirname "$0")/lib.sh"
: "${PERSONA:?}"

start_personad "$TMP/data" --signup open
A=$(signup_login alice)
B=$(signup_login bob)
HA=(-H "Authorization: Bearer $A")
HB=(-H "Authorization: Bearer $B")

# ---- voice settings ----
api GET /v1/voice
check "GET /v1/voice without a token is 401" test "$STATUS" = 401
api GET /v1/voice "${HA[@]}"
check "GET /v1/voice is 200" test "$STATUS" = 200
check "defaults: en-us 175 50 100" test "$(jget '"%s %d %d %d" % (j["voice"], j["rate"], j["pitch"], j["volume"])')" = "en-us 175 50 100"
check "voice list has en-us and de" test "$(jget '("en-us" in j["voices"]) and ("de" in j["voices"])')" = true

for bad in '{"rate":79}' '{"rate":451}' '{"rate":"fast"}' '{"pitch":-1}' '{"pitch":100}' \
    '{"volume":201}' '{"voice":"klingon"}' '{"voice":""}' '{"voice":"../etc"}' \
    '{"speed":200}' '[1]' '{"rate":200' ''; do
    api PUT /v1/voice "${HA[@]}" -d "$bad"
    check "PUT /v1/voice $bad is 400 with a message" test "$STATUS:$(jget 'bool(j.get("error",{}).get("message"))')" = "400:true"
done
api PUT /v1/voice "${HA[@]}" -d '{"voice":"de","rate":300,"pitch":70,"volume":150}'
check "PUT /v1/voice good values is 200" test "$STATUS" = 200
api GET /v1/voice "${HA[@]}"
check "alice's settings are stored" test "$(jget '"%s %d %d %d" % (j["voice"], j["rate"], j["pitch"], j["volume"])')" = "de 300 70 150"
api PUT /v1/voice "${HA[@]}" -d '{"rate":250}'
api GET /v1/voice "${HA[@]}"
check "a partial PUT keeps the other fields" test "$(jget '"%s %d %d" % (j["voice"], j["rate"], j["pitch"])')" = "de 250 70"
api GET /v1/voice "${HB[@]}"
check "bobby still has the defaults" test "$(jget '"%s %d" % (j["voice"], j["rate"])')" = "en-us 175"

# ---- synthesis ----
TEXT="The quick brown fox jumps over the lazy dog near the river bank."
tts() { # tts FILE TOKEN JSON
    STATUS=$(curl -s -o "$1" -w '%{http_code}' -X POST -H "Authorization: Bearer $2" -d "$3" "$PD_URL/v1/tts" || true)
}
tts "$TMP/b.wav" "$B" "{\"text\":\"$TEXT\"}"
check "POST /v1/tts (wav, default) is 200" test "$STATUS" = 200
check "the WAV starts with RIFF....WAVE" test "$(head -c 4 "$TMP/b.wav")$(head -c 12 "$TMP/b.wav" | tail -c 4)" = RIFFWAVE
D175=$(probe_duration "$TMP/b.wav")
check "WAV duration $D175 s is plausible (2-8 s)" python3 -c "import sys; sys.exit(0 if 2 < $D175 < 8 else 1)"
tts "$TMP/b.ogg" "$B" "{\"text\":\"$TEXT\",\"format\":\"ogg\"}"
check "POST /v1/tts ogg is 200" test "$STATUS" = 200
check "the Ogg starts with OggS" test "$(head -c 4 "$TMP/b.ogg")" = OggS
check "ffprobe reads opus" test "$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name -of csv=p=0 "$TMP/b.ogg")" = opus
check "Ogg duration $(probe_duration "$TMP/b.ogg") matches the WAV's $D175 (50 ms)" close_to "$(probe_duration "$TMP/b.ogg")" "$D175" 0.05
tts "$TMP/fast.wav" "$B" "{\"text\":\"$TEXT\",\"rate\":350}"
DFAST=$(probe_duration "$TMP/fast.wav")
check "rate 350 ($DFAST s) is much shorter than 175 ($D175 s)" python3 -c "import sys; sys.exit(0 if $DFAST < 0.7 * $D175 else 1)"
tts "$TMP/a.wav" "$A" "{\"text\":\"$TEXT\"}"
DA=$(probe_duration "$TMP/a.wav")
check "alice's stored rate 250 ($DA s) applies to her speech only" python3 -c "import sys; sys.exit(0 if $DA < 0.85 * $D175 else 1)"
tts "$TMP/ssml.wav" "$B" '{"text":"<speak>one <break time=\"2s\"/> two</speak>","ssml":true}'
check "SSML is 200" test "$STATUS" = 200
tts "$TMP/nossml.wav" "$B" '{"text":"<speak>one two</speak>","ssml":true}'
check "a 2 s <break> adds about 2 s" python3 -c "import sys; d=$(probe_duration "$TMP/ssml.wav")-$(probe_duration "$TMP/nossml.wav"); sys.exit(0 if 1.7 < d < 2.5 else 1)"
api POST /v1/tts "${HB[@]}" -d '{"text":"<audio src=\"/etc/passwd\"/>","ssml":true}'
check "SSML outside the subset is 400 invalid_ssml" test "$STATUS:$(jget 'j["error"]["code"]')" = 400:invalid_ssml
api POST /v1/tts "${HB[@]}" -d '{"text":"<speak>unclosed","ssml":true}'
check "truncated SSML is 400" test "$STATUS" = 400
for bad in '{}' '{"text":5}' '{"text":"hi","format":"mp3"}' '{"text":"hi","ssml":"yes"}' \
    '{"text":"hi","rate":10}' '{"text":"hi","voice":"nope"}' '{"text":"hi","extra":1}' 'x'; do
    api POST /v1/tts "${HB[@]}" -d "$bad"
    check "POST /v1/tts $bad is 400" test "$STATUS" = 400
done
api POST /v1/tts "${HB[@]}" -d '{"text":""}'
check "empty text is 200 with an empty WAV" test "$STATUS:$(stat -c %s "$TMP/body")" = 200:44
python3 -c 'import json; print(json.dumps({"text": "word " * 801}))' >"$TMP/long.json"
api POST /v1/tts "${HB[@]}" --data-binary @"$TMP/long.json"
check "4005 characters is 413" test "$STATUS" = 413
python3 -c 'import json; print(json.dumps({"text": "x" * 200000}))' >"$TMP/huge.json"
api POST /v1/tts "${HB[@]}" --data-binary @"$TMP/huge.json"
check "a 200 kB body is 413" test "$STATUS" = 413
# several at once: espeak-ng runs one at a time behind the module's mutex; all must succeed
PIDS=()
for i in 1 2 3 4 5 6; do
    curl -s -o "$TMP/par$i.ogg" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $B" \
        -d "{\"text\":\"Number $i. $TEXT\",\"format\":\"$( ((i % 2)) && echo ogg || echo wav)\"}" \
        "$PD_URL/v1/tts" >"$TMP/par$i.status" &
    PIDS+=($!)
done
wait "${PIDS[@]}"
check "6 parallel requests all 200 with audio" bash -c "cat '$TMP'/par?.status | sort -u | tr -d '\n' | grep -qx 200 && for f in '$TMP'/par?.ogg; do [[ \$(ffprobe -v error -show_entries format=duration -of csv=p=0 \$f) > 2 ]] || exit 1; done"
api POST /v1/tts "${HB[@]}" -d '{"text":"1 < 2 & 3 > 2"}'
check "plain text with < and & is spoken (200)" test "$STATUS" = 200

# ---- CLI ----
export PERSONA_SERVER=$PD_URL PERSONA_CONFIG=$TMP/cli.conf
check "persona voice shows alice's voice" bash -c "'$PERSONA' --token '$A' voice | grep -q '^voice: de'"
check "persona voice --list lists en-us" bash -c "'$PERSONA' --token '$A' voice --list | grep -q '^voices:.* en-us '"
check "persona voice --rate 999 fails" bash -c "! '$PERSONA' --token '$A' voice --rate 999 2>/dev/null"
check "persona voice --voice en-us --rate 200 sets them" bash -c "'$PERSONA' --token '$A' voice --voice en-us --rate 200 | grep -q '^rate: 200'"
check "persona say -o x.ogg writes Opus" bash -c "'$PERSONA' --token '$A' say 'Hello there.' -o '$TMP/cli.ogg' >/dev/null && [[ \$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 '$TMP/cli.ogg') == opus ]]"
check "persona say -o x.wav writes WAV" bash -c "'$PERSONA' --token '$A' say 'Hello there.' -o '$TMP/cli.wav' >/dev/null && [[ \$(head -c 4 '$TMP/cli.wav') == RIFF ]]"
check "persona say -o x.mp3 is a usage error" bash -c "'$PERSONA' --token '$A' say hi -o '$TMP/x.mp3' 2>/dev/null; [[ \$? == 2 ]]"
check "persona say with bad SSML fails and leaves no file" bash -c "! '$PERSONA' --token '$A' say --ssml '<voice>x</voice>' -o '$TMP/bad.wav' 2>/dev/null && [[ ! -e '$TMP/bad.wav' ]] && [[ -z \$(ls '$TMP' | grep part-) ]]"

finish
