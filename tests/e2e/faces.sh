#!/usr/bin/env bash
# faces: faces in the product on a real personad with the face-api models — pictures and a
# video (made with ffmpeg from one of the pictures, zooming in) are processed into faces with
# boxes, landmarks, descriptors and attributes, the video's faces are linked into a track, the
# person of the picture and of the video is one identity, which is named and made the persona;
# the /v1/faces calls (analyze's response shape as the issue states it, detect with both
# detectors, represent, verify same/different, find the right items), pictures by media id, no
# face -> [], bad pictures -> 400/413 with a message, another account sees none of it, the CLI's
# tables and --json, and a personad without models (503 with how to fix; items still ready).
. "$(dirname "$0")/lib.sh"
: "${PERSONA:?}" "${PERSONA_FACE_MODELS:?}"
M=$PERSONA_FACE_MODELS
if [[ ! -f $M/face_recognition_model-weights_manifest.json || ! -f $M/sample2.jpg ]]; then
    echo "face-api models missing in $M: run scripts/fetch_models.sh" >&2
    exit 1
fi

# The pictures: sample2 has one face; sample5 other people (all 0.69+ from it); a half-size sample2 (the same
# face at another scale); a picture without a face; a 3 s video zooming into sample2.
cp "$M/sample2.jpg" "$TMP/one.jpg"
cp "$M/sample5.jpg" "$TMP/others.jpg"
ffmpeg -v error -i "$M/sample2.jpg" -vf scale=960:-2 -q:v 3 "$TMP/half.jpg"
# (not testsrc: the tiny detector sees a face in its pattern, score 0.84)
ffmpeg -v error -f lavfi -i "mandelbrot=size=320x240" -frames:v 1 "$TMP/noface.png"
ffmpeg -v error -loop 1 -i "$M/sample2.jpg" \
    -vf "scale=960:-2,zoompan=z='1+0.004*on':d=1:s=960x684:fps=10,setsar=1,format=yuv420p" \
    -t 3 -r 10 -c:v libx264 "$TMP/zoom.mp4"
head -c 20000 "$TMP/one.jpg" >"$TMP/truncated.jpg"
head -c 5000 /dev/urandom >"$TMP/random.bin"
ffmpeg -v error -f lavfi -i "color=gray:size=2100x2100" -frames:v 1 "$TMP/big.png"

# jtrue CODE — runs python CODE over the JSON in $TMP/body as `j`; prints the value it leaves
# in r (several statements, unlike jget's one expression).
jtrue() {
    python3 -c 'import json,sys
env = {"j": json.load(open(sys.argv[1]))}
exec(sys.argv[2], env)
print(env.get("r"))' "$TMP/body" "$1"
}

DATA=$TMP/data
# 4 Mpx: the 1920-wide samples pass, the 2100x2100 picture does not; bodies up to 1 MiB (two
# samples in base64 fit).
start_personad "$DATA" --signup open --face-models "$M" --face-max-pixels 4M --face-max-image-bytes 1M
A=$(signup_login alice)
B=$(signup_login bob)
AUTH=(-H "Authorization: Bearer $A")
BAUTH=(-H "Authorization: Bearer $B")

upload() { # FILE TYPE -> ID
    api POST "/v1/media?title=$(basename "$1")" "${AUTH[@]}" -H "Content-Type: $2" \
        --data-binary "@$1"
    jget 'j["id"]'
}
IMG=$(upload "$TMP/one.jpg" image/jpeg)
VID=$(upload "$TMP/zoom.mp4" video/mp4)
NOF=$(upload "$TMP/noface.png" image/png)
OTH=$(upload "$TMP/others.jpg" image/jpeg)
for id in $IMG $VID $NOF $OTH; do
    check "item $id processed" test "$(wait_media "$A" "$id")" = ready
done

echo "# stored faces"
api GET "/v1/media/$IMG/faces" "${AUTH[@]}"
check "GET /v1/media/$IMG/faces: 200" test "$STATUS" = 200
check "picture: faces status done" test "$(jget 'j["status"]')" = done
check "picture: one face" test "$(jget 'len(j["faces"])')" = 1
check "picture: box, 68 landmarks, 128-D descriptor, attributes" test "$(jtrue '
f = j["faces"][0]
r = (all(k in f["box"] for k in "xywh") and len(f["landmarks"]) == 68 and len(f["descriptor"]) == 128
and f["gender"] in ("male", "female") and 0 < f["age"] < 100 and len(f["expressions"]) == 7
and f["ts_ms"] == 0 and f["media_id"] == '"$IMG"' and f["identity_id"] > 0)')" = True
IMG_IDENT=$(jget 'j["faces"][0]["identity_id"]')

api GET "/v1/media/$VID/faces" "${AUTH[@]}"
check "video: faces status done, 6+ frames sampled at 2/s ($(jget 'j["frames"]'))" \
    test "$(jtrue 'r = (j["status"] == "done" and j["frames"] >= 6)')" = True
# The zoom keeps the face where it was: the face of every frame is one track.
read -r TRACK_N TRACK_START TRACK_END TRACK_IDENT < <(jget '" ".join(str(x) for x in max(
    ((t["face_count"], t["start_ms"], t["end_ms"], t["identity_id"]) for t in j["tracks"])))')
check "video: one track across the frames ($TRACK_N faces, $TRACK_START..$TRACK_END ms)" \
    test "$TRACK_N" -ge 5 -a "$TRACK_START" -le 500 -a "$TRACK_END" -ge 2000
check "video: frames in time order, each face in a track" test "$(jtrue '
ts = [f["ts_ms"] for f in j["faces"]]
r = (ts == sorted(ts) and all(f["track_id"] for f in j["faces"]))')" = True
check "the picture's person and the video's are one identity ($IMG_IDENT, $TRACK_IDENT)" \
    test "$IMG_IDENT" = "$TRACK_IDENT"

api GET "/v1/media/$VID/faces?descriptors=false&landmarks=false" "${AUTH[@]}"
check "video: ?descriptors=false&landmarks=false leaves them out" test "$(jtrue 'r = (len(j["faces"]) >= 5 and all("descriptor" not in f and "landmarks" not in f and "box" in f for f in j["faces"]))')" = True
api GET "/v1/media/$NOF/faces" "${AUTH[@]}"
check "no-face picture: done with no faces" test "$(jtrue 'r = (j["status"] == "done" and j["faces"] == [])')" = True
api GET "/v1/media/$OTH/faces" "${AUTH[@]}"
check "sample5: several faces, none of them the sample2 person" test "$(jtrue '
r = (len(j["faces"]) >= 2 and all(f["identity_id"] != '"$IMG_IDENT"' for f in j["faces"]))')" = True

echo "# identities"
api GET /v1/identities "${AUTH[@]}"
check "GET /v1/identities: 200" test "$STATUS" = 200
check "the sample2 person: faces from 2 items, a representative face" test "$(jtrue '
i = [x for x in j["identities"] if x["id"] == '"$IMG_IDENT"'][0]
r = (i["media_count"] == 2 and i["face_count"] >= 6 and i["representative"]["media_id"] in ('"$IMG, $VID"')
and i["name"] is None and i["is_persona"] is False)')" = True
OTHER_IDENT=$(jget '[x["id"] for x in j["identities"] if x["id"] != '"$IMG_IDENT"'][0]')
api POST "/v1/identities/$IMG_IDENT" "${AUTH[@]}" -d '{"name":"Ada","is_persona":true}'
check "name + persona: 200" test "$STATUS" = 200
check "named Ada, the persona" test "$(jtrue 'r = (j["name"] == "Ada" and j["is_persona"])')" = True
api POST "/v1/identities/$OTHER_IDENT" "${AUTH[@]}" -d '{"is_persona":true}'
api GET /v1/identities "${AUTH[@]}"
check "one persona at a time: the other one now" test "$(jtrue '
r = ([x["id"] for x in j["identities"] if x["is_persona"]] == ['"$OTHER_IDENT"'])')" = True
api POST "/v1/identities/$IMG_IDENT" "${AUTH[@]}" -d '{"is_persona":true}'
api POST "/v1/identities/$IMG_IDENT" "${AUTH[@]}" -d '{"name":""}'
check "empty name: 400" test "$STATUS" = 400
api POST "/v1/identities/$IMG_IDENT" "${AUTH[@]}" -d '{"nickname":"x"}'
check "unknown field: 400" test "$STATUS" = 400
api POST "/v1/identities/999999" "${AUTH[@]}" -d '{"name":"x"}'
check "unknown identity: 404" test "$STATUS" = 404
api GET "/v1/identities/$IMG_IDENT/faces?limit=2" "${AUTH[@]}"
check "identity faces, paged: 2 and a cursor" test "$(jtrue 'r = (len(j["faces"]) == 2 and j["next_before"] == j["faces"][1]["id"])')" = True
NEXT=$(jget 'j["next_before"]')
api GET "/v1/identities/$IMG_IDENT/faces?before=$NEXT&limit=1000" "${AUTH[@]}"
check "identity faces, next page: older ids" test "$(jtrue 'r = (all(f["id"] < '"$NEXT"' for f in j["faces"]) and len(j["faces"]) >= 4)')" = True

# The video's second (false) face is an identity of its own: merged into another, it is gone.
api GET /v1/identities "${AUTH[@]}"
read -r M_FROM M_INTO _ < <(jget '" ".join(str(x["id"]) for x in j["identities"] if x["id"] != '"$IMG_IDENT"')')
api POST "/v1/identities/$M_FROM" "${AUTH[@]}" -d "{\"merge_into\":$M_INTO}"
check "merge: 200 with the identity merged into" test "$STATUS:$(jget 'j["id"]')" = "200:$M_INTO"
api GET "/v1/identities/$M_FROM/faces" "${AUTH[@]}"
check "merge: the merged one is gone" test "$STATUS" = 404
api POST "/v1/identities/$M_INTO" "${AUTH[@]}" -d "{\"merge_into\":$M_INTO}"
check "merge into itself: 400" test "$STATUS" = 400
OTHER_IDENT=$M_INTO

echo "# POST /v1/faces/analyze: the issue's response shape"
api POST "/v1/faces/analyze?detector=tiny" "${AUTH[@]}" -H "Content-Type: image/jpeg" \
    --data-binary "@$M/sample1.jpg"
check "analyze: 200" test "$STATUS" = 200
check "analyze: 3 faces, every face object exactly as the issue states" test "$(jtrue '
names = ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
def ok(f):
    return (set(f) == {"box", "score", "landmarks", "descriptor", "age", "gender", "gender_probability", "expressions"}
        and set(f["box"]) == set("xywh") and all(isinstance(v, (int, float)) for v in f["box"].values())
        and len(f["landmarks"]) == 68 and all(len(p) == 2 for p in f["landmarks"])
        and len(f["descriptor"]) == 128 and f["gender"] in ("male", "female")
        and 0.5 <= f["gender_probability"] <= 1 and sorted(f["expressions"]) == sorted(names)
        and abs(sum(f["expressions"].values()) - 1) < 0.01
        and 0 <= f["box"]["x"] and f["box"]["x"] + f["box"]["w"] <= 1920.01)
r = (len(j["faces"]) == 3 and all(ok(f) for f in j["faces"]))')" = True
api POST "/v1/faces/detect?detector=ssd" "${AUTH[@]}" -H "Content-Type: image/jpeg" \
    --data-binary "@$TMP/one.jpg"
check "detect with ssd: faces with box, score, landmarks; no descriptor" test "$(jtrue '
r = (j["detector"] == "ssd" and len(j["faces"]) >= 1 and all(set(f) == {"box", "score", "landmarks"} for f in j["faces"]))')" = True
api POST "/v1/faces/detect?detector=big" "${AUTH[@]}" -H "Content-Type: image/jpeg" \
    --data-binary "@$TMP/one.jpg"
check "unknown detector: 400" test "$STATUS" = 400
api POST /v1/faces/represent "${AUTH[@]}" -H "Content-Type: image/png" --data-binary "@$TMP/noface.png"
check "no face: 200 with faces []" test "$STATUS:$(jget 'j["faces"]')" = "200:[]"

echo "# pictures by media id"
api POST "/v1/faces/detect?media_id=$IMG" "${AUTH[@]}" --data-binary ""
check "?media_id of a picture: one face" test "$STATUS:$(jget 'len(j["faces"])')" = 200:1
api POST "/v1/faces/analyze?media_id=$VID&at_ms=1500" "${AUTH[@]}" --data-binary ""
check "?media_id of a video at 1.5 s: a face, 960 wide" test "$STATUS:$(jtrue 'r = (len(j["faces"]) >= 1 and j["width"] == 960)')" = 200:True
api POST /v1/faces/represent "${AUTH[@]}" -H "Content-Type: application/json" -d "{\"media_id\":$IMG}"
check "JSON {media_id}: a descriptor" test "$STATUS:$(jget 'len(j["faces"][0]["descriptor"])')" = 200:128
api POST "/v1/faces/detect?media_id=$VID&at_ms=40" "${AUTH[@]}" --data-binary ""
check "?media_id of a video at 40 ms (frame 0 is the nearest): 200" test "$STATUS" = 200
api POST "/v1/faces/detect?media_id=$VID&at_ms=60000" "${AUTH[@]}" --data-binary ""
check "at_ms past the end: 400" test "$STATUS" = 400

echo "# verify and find"
b64() { base64 -w0 "$1"; }
verify() { # FILE1 FILE2
    printf '{"img1":{"data":"%s"},"img2":{"data":"%s"}}' "$(b64 "$1")" "$(b64 "$2")" >"$TMP/verify.json"
    api POST /v1/faces/verify "${AUTH[@]}" -H "Content-Type: application/json" --data-binary "@$TMP/verify.json"
}
verify "$TMP/one.jpg" "$TMP/half.jpg"
check "verify: the same face at two scales is the same person ($(jget 'j.get("distance")'))" \
    test "$STATUS:$(jget 'j["verified"]')" = 200:true
check "verify: the documented shape" test "$(jtrue '
r = (set(j) >= {"verified", "distance", "threshold", "model", "detector", "metric", "img1", "img2"}
and j["threshold"] == 0.6 and j["model"] == "face-api" and j["metric"] == "euclidean"
and len(j["img1"]["descriptor"]) == 128)')" = True
verify "$TMP/one.jpg" "$TMP/others.jpg"
check "verify: different people are not ($(jget 'j.get("distance")'))" test "$STATUS:$(jget 'j["verified"]')" = 200:false
api POST /v1/faces/verify "${AUTH[@]}" -H "Content-Type: application/json" \
    -d "{\"img1\":{\"media_id\":$IMG},\"img2\":{\"media_id\":$VID,\"at_ms\":2000}}"
check "verify by media ids: the picture and the video frame are the same person" test "$STATUS:$(jget 'j["verified"]')" = 200:true
verify "$TMP/one.jpg" "$TMP/noface.png"
check "verify with a faceless picture: 422 no_face" test "$STATUS:$(jget 'j["error"]["code"]')" = 422:no_face
api POST /v1/faces/verify "${AUTH[@]}" -H "Content-Type: application/json" -d '{"img1":{"data":"!!"},"img2":{"media_id":1}}'
check "verify with bad base64: 400" test "$STATUS" = 400
verify_cosine() { # FILE1 FILE2 [METRIC]
    printf '{"img1":{"data":"%s"},"img2":{"data":"%s"}}' "$(b64 "$1")" "$(b64 "$2")" >"$TMP/verify.json"
    api POST "/v1/faces/verify?metric=${3:-cosine}" "${AUTH[@]}" -H "Content-Type: application/json" \
        --data-binary "@$TMP/verify.json"
}
verify_cosine "$TMP/one.jpg" "$TMP/half.jpg"
check "verify, cosine: the same face at two scales ($(jget 'j.get("distance")'))" test "$STATUS:$(jtrue '
r = (j["verified"] is True and j["metric"] == "cosine" and j["threshold"] == 0.085)')" = 200:True
verify_cosine "$TMP/one.jpg" "$TMP/others.jpg"
check "verify, cosine: different people are not ($(jget 'j.get("distance")'))" test "$STATUS:$(jget 'j["verified"]')" = 200:false
verify_cosine "$TMP/one.jpg" "$TMP/half.jpg" manhattan
check "verify with an unknown metric: 400" test "$STATUS:$(jget 'j["error"]["code"]')" = 400:invalid_query

api POST /v1/faces/find "${AUTH[@]}" -H "Content-Type: image/jpeg" --data-binary "@$TMP/half.jpg"
check "find: the half-size picture's face matches the picture and the video, nothing else" test "$(jtrue '
m = j["faces"][0]["matches"]
r = (sorted(x["media_id"] for x in m) == sorted(['"$IMG, $VID"']) and m[0]["distance"] <= m[-1]["distance"]
and all(x["identity_id"] == '"$IMG_IDENT"' and x["identity_name"] == "Ada" for x in m))')" = True
api POST "/v1/faces/find?metric=cosine" "${AUTH[@]}" -H "Content-Type: image/jpeg" --data-binary "@$TMP/half.jpg"
check "find, cosine: the same two items" test "$(jtrue '
m = j["faces"][0]["matches"]
r = (j["metric"] == "cosine" and sorted(x["media_id"] for x in m) == sorted(['"$IMG, $VID"']) and all(x["distance"] < 0.085 for x in m))')" = True

echo "# bad pictures"
api POST /v1/faces/detect "${AUTH[@]}" -H "Content-Type: image/jpeg" --data-binary "@$TMP/random.bin"
check "random bytes: 400 with a message" test "$STATUS:$(jget 'j["error"]["code"]')" = 400:invalid_image
echo "#   $(jget 'j["error"]["message"]')"
api POST /v1/faces/detect "${AUTH[@]}" -H "Content-Type: image/jpeg" --data-binary ""
check "empty body: 400" test "$STATUS:$(jtrue 'r = (bool(j["error"]["message"]))')" = 400:True
api POST /v1/faces/analyze "${AUTH[@]}" -H "Content-Type: image/jpeg" --data-binary "@$TMP/truncated.jpg"
check "truncated JPEG: 400 with a message" test "$STATUS:$(jget 'j["error"]["code"]')" = 400:invalid_image
echo "#   $(jget 'j["error"]["message"]')"
api POST /v1/faces/detect "${AUTH[@]}" -H "Content-Type: image/png" --data-binary "@$TMP/big.png"
check "4.4 Mpx over a 4M limit: 413" test "$STATUS" = 413
head -c 1200000 /dev/urandom >"$TMP/huge.bin"
api POST /v1/faces/detect "${AUTH[@]}" -H "Content-Type: image/jpeg" --data-binary "@$TMP/huge.bin"
check "a body over face_max_image_bytes: 413" test "$STATUS:$(jget 'j["error"]["code"]')" = 413:payload_too_large
api POST /v1/faces/detect "${AUTH[@]}" -H "Content-Type: application/json" -d '{"media_id":"x"}'
check "JSON with a bad media_id: 400" test "$STATUS" = 400
api POST /v1/faces/detect -H "Content-Type: image/jpeg" --data-binary "@$TMP/one.jpg"
check "no token: 401" test "$STATUS" = 401

echo "# another account"
api GET "/v1/media/$IMG/faces" "${BAUTH[@]}"
check "bob: alice's item's faces: 404" test "$STATUS" = 404
api GET /v1/identities "${BAUTH[@]}"
check "bob: no identities" test "$STATUS:$(jget 'j["identities"]')" = "200:[]"
api GET "/v1/identities/$IMG_IDENT/faces" "${BAUTH[@]}"
check "bob: alice's identity's faces: 404" test "$STATUS" = 404
api POST "/v1/identities/$IMG_IDENT" "${BAUTH[@]}" -d '{"name":"Eve"}'
check "bob: naming alice's identity: 404" test "$STATUS" = 404
api POST "/v1/faces/detect?media_id=$IMG" "${BAUTH[@]}" --data-binary ""
check "bob: alice's item as a picture: 404" test "$STATUS" = 404
api POST /v1/faces/find "${BAUTH[@]}" -H "Content-Type: image/jpeg" --data-binary "@$TMP/one.jpg"
check "bob: find in his (empty) gallery: a face, no match" test "$STATUS:$(jtrue 'r = (len(j["faces"]) == 1 and j["faces"][0]["matches"] == [])')" = 200:True

echo "# the CLI"
export PERSONA_SERVER=$PD_URL PERSONA_TOKEN=$A PERSONA_CONFIG=$TMP/cli.conf
OUT=$("$PERSONA" faces analyze "$M/sample1.jpg")
echo "$OUT" | sed 's/^/#   /'
check "persona faces analyze: 3 faces in a table with age, gender, expression" \
    test "$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +0\.[0-9]{3} +[0-9]+ +(male|female) +[0-9]+% +[a-z]+ +[0-9]+%$' <<<"$OUT")" = 3
check "persona faces detect --json: the server's objects" bash -c \
    "\"\$PERSONA\" faces detect '$TMP/one.jpg' '$TMP/noface.png' --json | python3 -c 'import json,sys; l=[json.loads(x) for x in sys.stdin]; assert [len(x[\"faces\"]) for x in l] == [1, 0]'"
OUT=$("$PERSONA" faces verify "$TMP/one.jpg" "$TMP/half.jpg")
check "persona faces verify: same person ($OUT)" grep -q "same person" <<<"$OUT"
OUT=$("$PERSONA" faces verify "$TMP/one.jpg" "$TMP/others.jpg")
check "persona faces verify: different people ($OUT)" grep -q "different people" <<<"$OUT"
OUT=$("$PERSONA" faces verify "$TMP/one.jpg" "$TMP/others.jpg" --metric cosine)
check "persona faces verify --metric cosine: different people, threshold 0.085 ($OUT)" \
    grep -q "threshold 0.085): different people" <<<"$OUT"
"$PERSONA" faces find "$TMP/half.jpg" --metric cosine --json >"$TMP/body"
check "persona faces find --metric cosine: the server compared by cosine" test "$(jget 'j["metric"]')" = cosine
OUT=$("$PERSONA" faces find "$TMP/half.jpg")
check "persona faces find: the items, with the name" test "$(grep -c "(Ada) distance" <<<"$OUT")" = 2
"$PERSONA" identities name "$OTHER_IDENT" "Grace Hopper" --persona >/dev/null
OUT=$("$PERSONA" identities)
echo "$OUT" | sed 's/^/#   /'
check "persona identities: the named persona" grep -qE "^ +$OTHER_IDENT +Grace Hopper +[0-9]+ +[0-9]+ +yes$" <<<"$OUT"
api GET /v1/identities "${AUTH[@]}"
read -r C_FROM C_INTO _ < <(jget '" ".join(str(x["id"]) for x in j["identities"] if x["id"] not in ('"$IMG_IDENT, $OTHER_IDENT"'))')
OUT=$("$PERSONA" identities merge "$C_FROM" "$C_INTO")
check "persona identities merge: prints the identity merged into ($OUT)" grep -q "^identity $C_INTO: " <<<"$OUT"
check "persona identities --json" bash -c "\"\$PERSONA\" identities --json | python3 -c 'import json,sys; assert any(i[\"name\"] == \"Ada\" for i in json.load(sys.stdin)[\"identities\"])'"
set +e
"$PERSONA" faces detect "$TMP/random.bin" >/dev/null 2>&1
check "persona faces detect of a non-picture name: fails (1)" test $? = 1
cp "$TMP/random.bin" "$TMP/random.jpg"
"$PERSONA" faces detect "$TMP/random.jpg" >/dev/null 2>"$TMP/cli.err"
check "persona faces detect of random bytes: fails (1) with the server's reason" test $? = 1
grep -q "decoded" "$TMP/cli.err" || bad "the reason is printed: $(cat "$TMP/cli.err")"
"$PERSONA" faces smile "$TMP/one.jpg" >/dev/null 2>&1
check "persona faces smile: usage error (2)" test $? = 2
"$PERSONA" faces verify "$TMP/one.jpg" >/dev/null 2>&1
check "persona faces verify with one file: usage error (2)" test $? = 2
"$PERSONA" faces analyze "$TMP/one.jpg" --metric cosine >/dev/null 2>&1
check "persona faces analyze --metric: usage error (2)" test $? = 2
set -e

echo "# deleting an item takes its faces along"
api DELETE "/v1/media/$VID" "${AUTH[@]}"
api GET /v1/identities "${AUTH[@]}"
check "Ada now has the picture's face only" test "$(jtrue '
r = ([(x["face_count"], x["media_count"]) for x in j["identities"] if x["id"] == '"$IMG_IDENT"'] == [(1, 1)])')" = True

echo "# stopping personad while a video's faces are analyzed"
ffmpeg -v error -loop 1 -i "$M/sample2.jpg" -vf "scale=960:-2,setsar=1,format=yuv420p" -t 10 -r 10 \
    -c:v libx264 "$TMP/long.mp4"
LONG=$(upload "$TMP/long.mp4" video/mp4)
for _ in $(seq 300); do
    api GET "/v1/media/$LONG" "${AUTH[@]}"
    [[ $(jget 'j["status"]') != queued ]] && break
    sleep 0.05
done
stop_personad
# Whenever the stop came (during the faces step or after the item was done), after the restart
# the item is done once, with every frame: an interrupted step leaves its job to run again.
start_personad "$DATA" --signup open --face-models "$M" --face-max-pixels 4M
check "the interrupted video is processed after the restart" test "$(wait_media "$A" "$LONG")" = ready
api GET "/v1/media/$LONG/faces?descriptors=false&landmarks=false" "${AUTH[@]}"
check "its faces: done, 20 frames, one face each ($(jget 'len(j["faces"])') faces)" \
    test "$(jtrue 'r = (j["status"] == "done" and j["frames"] >= 20 and len(j["faces"]) >= 20 and len({f["ts_ms"] for f in j["faces"]}) == j["frames"])')" = True
api GET "/v1/media/$IMG/faces" "${AUTH[@]}"
check "after a restart the picture's face is still there, once" test "$(jget 'len(j["faces"])')" = 1

echo "# without models"
stop_personad
start_personad "$TMP/data2" --signup open --face-models "$TMP/no-models"
C=$(signup_login carol)
api POST /v1/faces/detect -H "Authorization: Bearer $C" -H "Content-Type: image/jpeg" --data-binary "@$TMP/one.jpg"
check "no models: 503 saying how to fix it" test "$STATUS:$(jtrue 'r = ("fetch_models" in j["error"]["message"])')" = 503:True
api POST "/v1/media?title=one" -H "Authorization: Bearer $C" -H "Content-Type: image/jpeg" --data-binary "@$TMP/one.jpg"
CID=$(jget 'j["id"]')
check "no models: the item is still processed" test "$(wait_media "$C" "$CID")" = ready
api GET "/v1/media/$CID/faces" -H "Authorization: Bearer $C"
check "no models: the item's faces status says why" test "$(jtrue 'r = (j["status"] == "skipped" and "face models" in j["error"])')" = True
grep -q 'event=faces.load.*error=' "$PD_LOG" || bad "the missing models are logged"

finish
