#!/usr/bin/env bash
# media_api: a real personad over real sockets: accounts and tokens, uploads of every media kind
# made with the ffmpeg CLI, separation of audio and video (checked with ffprobe), the 16 kHz PCM,
# thumbnails, Range downloads, bad inputs that must leave nothing behind, 401 / 404 across
# accounts / 413 / revoked tokens, and the metrics and health endpoints.
source "$(dirname "$0")/lib.sh"

DATA=$TMP/data
start_personad "$DATA" --signup open --max-upload-bytes 2M

echo "# health and auth"
api GET /v1/health
check "health answers 200" test "$STATUS" = 200
check "health says ok" test "$(jget 'j["status"]')" = ok
api GET /v1/media
check "no token: 401" test "$STATUS" = 401
check "401 is a JSON error" test "$(jget 'j["error"]["code"]')" = unauthorized
api GET /v1/media -H "Authorization: Bearer pst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
check "unknown token: 401" test "$STATUS" = 401

A=$(signup_login alice)
B=$(signup_login bob)
check "alice got a token" test "${#A}" = 47
check "bob got a token" test "${#B}" = 47
api POST /v1/sessions -d '{"username":"alice","password":"wrong-password"}'
check "wrong password: 401" test "$STATUS" = 401
api POST /v1/accounts -d '{"username":"alice","password":"another-password"}'
check "taken username: 409" test "$STATUS" = 409
api POST /v1/accounts -d '{"username":"x y","password":"password-xy"}'
check "bad username: 400" test "$STATUS" = 400
api POST /v1/accounts -d '{"username":'
check "malformed JSON: 400" test "$STATUS" = 400

echo "# uploads of every kind"
declare -A ID
upload() { # FILE CONTENT-TYPE -> sets STATUS, body
    api POST "/v1/media?title=$1" -H "Authorization: Bearer $A" -H "Content-Type: $2" \
        --data-binary "@$FX/$1"
}
for spec in clip.mp4:video/mp4 clip.mkv:video/x-matroska clip.webm:video/webm \
    clip.mov:video/quicktime clip.m4a:audio/mp4 clip.mp3:audio/mpeg clip.wav:audio/wav \
    still.png:image/png still.jpg:image/jpeg notes.txt:text/plain; do
    f=${spec%%:*}
    ct=${spec#*:}
    upload "$f" "$ct"
    check "upload $f: 201" test "$STATUS" = 201
    ID[$f]=$(jget 'j["id"]')
    check "upload $f: sha256 matches" test "$(jget 'j["sha256"]')" = "$(sha256sum "$FX/$f" | cut -d' ' -f1)"
done

for f in clip.mp4 clip.mkv clip.webm clip.mov clip.m4a clip.mp3 clip.wav still.png still.jpg; do
    st=$(wait_media "$A" "${ID[$f]}")
    check "$f processed: ready" test "$st" = ready
    [[ $st == ready ]] || { cat "$TMP/body"; continue; }
    cp "$TMP/body" "$TMP/item.json"
    names=$(jget '" ".join(sorted(a["name"] for a in j["artifacts"]))')
    case $f in
    clip.m4a | clip.mp3 | clip.wav) want="audio pcm" ;;
    still.*) want="thumbnail" ;;
    *) want="audio pcm thumbnail video" ;;
    esac
    check "$f artifacts are: $want" test "$names" = "$want"
    for art in $names; do
        ext=$(jget "[a['ext'] for a in j['artifacts'] if a['name']=='$art'][0]")
        out=$TMP/$f.$art.$ext
        download "/v1/media/${ID[$f]}/$art" "$out" -H "Authorization: Bearer $A"
        cp "$TMP/item.json" "$TMP/body"
        check "$f $art download: 200" test "$STATUS" = 200
        case $art in
        audio | video)
            t=${art:0:1}
            check "$f $art has exactly one $art stream" test "$(probe_streams "$out")" = "$art "
            orig=$(probe_stream_duration "$FX/$f" "$t")
            got=$(probe_stream_duration "$out" "$t")
            check "$f $art duration $got within 0.1 s of $orig" close_to "$got" "$orig" 0.1
            ;;
        pcm)
            fmt=$(ffprobe -v error -show_entries stream=codec_name,sample_rate,channels -of csv=p=0 "$out")
            check "$f pcm is 16 kHz mono s16 ($fmt)" test "$fmt" = "pcm_s16le,16000,1"
            orig=$(probe_stream_duration "$FX/$f" a)
            check "$f pcm duration within 0.1 s" close_to "$(probe_duration "$out")" "$orig" 0.1
            ;;
        thumbnail)
            dims=$(ffprobe -v error -show_entries stream=codec_name,width,height -of csv=p=0 "$out")
            check "$f thumbnail is a JPEG at most 320 px ($dims)" python3 -c '
import sys; c,w,h=sys.argv[1].split(","); sys.exit(0 if c=="mjpeg" and max(int(w),int(h))<=320 else 1)' "$dims"
            ;;
        esac
    done
done
api GET "/v1/media/${ID[clip.mp4]}" -H "Authorization: Bearer $A"
check "probe: container, codecs and resolution" test \
    "$(jget 'j["probe"]["video"]["codec"]+" "+j["probe"]["audio"]["codec"]+" "+str(j["probe"]["video"]["width"])')" = "h264 aac 320"
check "webm video was copied as vp9 into webm" test "$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$TMP/clip.webm.video.webm")" = vp9
check "webm audio was copied as opus" test "$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$TMP/clip.webm.audio."*)" = opus

api GET "/v1/media/${ID[notes.txt]}" -H "Authorization: Bearer $A"
check "text item is ready at once" test "$(jget 'j["status"]')" = ready

echo "# Range downloads"
orig=$FX/clip.mp4
download "/v1/media/${ID[clip.mp4]}/original" "$TMP/range" -H "Authorization: Bearer $A" -H "Range: bytes=100-199"
check "Range: 206" test "$STATUS" = 206
check "Range: exactly the bytes asked for" cmp -s "$TMP/range" <(tail -c +101 "$orig" | head -c 100)
download "/v1/media/${ID[clip.mp4]}/original" "$TMP/range" -H "Authorization: Bearer $A" -H "Range: bytes=-10"
check "suffix Range: the last 10 bytes" cmp -s "$TMP/range" <(tail -c 10 "$orig")
download "/v1/media/${ID[clip.mp4]}/original" /dev/null -H "Authorization: Bearer $A" -H "Range: bytes=99999999-"
check "unsatisfiable Range: 416" test "$STATUS" = 416
download "/v1/media/${ID[clip.mp4]}/original" "$TMP/whole" -H "Authorization: Bearer $A"
check "whole original downloads intact" cmp -s "$TMP/whole" "$orig"

echo "# bad inputs leave nothing behind"
blobs_before=$(count_files "$DATA/blobs")
api GET /v1/media -H "Authorization: Bearer $A"
items_before=$(jget 'len(j["media"])')
for spec in truncated.mp4:video/mp4:415 random.mp4:video/mp4:415 empty.bin:video/mp4:400 \
    notes.txt:video/mp4:415 clip.m4a:video/mp4:415 still.png:video/mp4:415 clip.mp4:image/png:415 \
    badutf8.txt:text/plain:400 clip.mp4:application/octet-stream:415; do
    IFS=: read -r f ct want <<<"$spec"
    upload "$f" "$ct"
    check "$f as $ct: $want" test "$STATUS" = "$want"
    msg=$(jget 'j["error"]["message"]')
    check "$f as $ct: a clear message ($msg)" test -n "$msg"
done
api GET /v1/media -H "Authorization: Bearer $A"
check "no item was recorded for bad input" test "$(jget 'len(j["media"])')" = "$items_before"
check "no blob was left behind" test "$(count_files "$DATA/blobs")" = "$blobs_before"
check "no temp file was left behind" test "$(count_files "$DATA/tmp")" = 0
check "nothing in the database for bad input" test "$(sqlite3 "$DATA/persona.db" "SELECT count(*) FROM media")" = "$items_before"

echo "# damage that only decoding finds: the job fails with its reason on the item"
python3 - "$FX/clip.mp3" "$TMP/damaged.mp3" <<'PY'
import random, sys
b = bytearray(open(sys.argv[1], "rb").read())
r = random.Random(7)
for i in range(len(b) // 3, len(b) - 100):
    b[i] = r.randrange(256)
open(sys.argv[2], "wb").write(b)
PY
api POST "/v1/media?title=damaged" -H "Authorization: Bearer $A" -H "Content-Type: audio/mpeg" \
    --data-binary "@$TMP/damaged.mp3"
check "damaged mp3 probes fine: 201" test "$STATUS" = 201
DMG=$(jget 'j["id"]')
check "damaged mp3: the job fails" test "$(wait_media "$A" "$DMG")" = failed
check "damaged mp3: the reason is stored ($(jget 'j["error"]'))" grep -q 'damaged' "$TMP/body"

echo "# 413 before the body is read"
api POST "/v1/media" -H "Authorization: Bearer $A" -H "Content-Type: video/mp4" --data-binary "@$FX/long.mp4"
check "over max_upload_bytes: 413" test "$STATUS" = 413
check "413 names the limit" grep -q 2097152 "$TMP/body"

echo "# accounts never see each other"
api GET "/v1/media/${ID[clip.mp4]}" -H "Authorization: Bearer $B"
cp "$TMP/body" "$TMP/cross"
check "bob gets 404 for alice's item" test "$STATUS" = 404
api GET "/v1/media/999999" -H "Authorization: Bearer $B"
check "same answer as a missing id" cmp -s "$TMP/cross" "$TMP/body"
api GET "/v1/media/${ID[clip.mp4]}/original" -H "Authorization: Bearer $B"
check "bob cannot download alice's file" test "$STATUS" = 404
api DELETE "/v1/media/${ID[clip.mp4]}" -H "Authorization: Bearer $B"
check "bob cannot delete alice's item" test "$STATUS" = 404
api GET /v1/media -H "Authorization: Bearer $B"
check "bob's list is empty" test "$(jget 'len(j["media"])')" = 0

echo "# devices and revocation"
api POST /v1/devices -H "Authorization: Bearer $A" -d '{"name":"desk","kind":"desktop"}'
check "add desktop device: 201" test "$STATUS" = 201
D=$(jget 'j["token"]')
DID=$(jget 'j["device_id"]')
api GET /v1/me -H "Authorization: Bearer $D"
check "desktop token works" test "$STATUS" = 200
api DELETE "/v1/devices/$DID" -H "Authorization: Bearer $B"
check "bob cannot revoke alice's device" test "$STATUS" = 404
api DELETE "/v1/devices/$DID" -H "Authorization: Bearer $A"
check "revoke: 204" test "$STATUS" = 204
api GET /v1/me -H "Authorization: Bearer $D"
check "revoked token: 401" test "$STATUS" = 401
api GET /v1/devices -H "Authorization: Bearer $A"
check "device list shows it revoked" test "$(jget "[d['revoked'] for d in j['devices'] if d['id']==$DID][0]")" = true

echo "# delete"
api DELETE "/v1/media/${ID[clip.mov]}" -H "Authorization: Bearer $A"
check "delete: 204" test "$STATUS" = 204
api GET "/v1/media/${ID[clip.mov]}" -H "Authorization: Bearer $A"
check "deleted item: 404" test "$STATUS" = 404

echo "# metrics"
api GET /metrics
check "metrics: 200" test "$STATUS" = 200
check "metrics count requests by route and status" grep -q 'persona_http_requests_total{route="/v1/media/{id}",method="GET",status="404"}' "$TMP/body"
check "metrics have a latency histogram" grep -q 'persona_http_request_duration_seconds_bucket' "$TMP/body"
check "metrics count jobs by state" grep -q 'persona_jobs{state="done"}' "$TMP/body"
check "metrics count bytes in" grep -q '^persona_http_bytes_in_total [1-9]' "$TMP/body"
check "a request log line per request" grep -q 'event=http.request .*route=/v1/media/{id}.*status=404' "$PD_LOG"

finish
