#!/usr/bin/env bash
# auth: signup policies, failed-login limits per username and per address, token checks, and
# JSON routes fed truncated, empty, oversized, deeply nested and random bodies (always a 4xx with
# a JSON error, never a crash).
source "$(dirname "$0")/lib.sh"

echo "# signup policy 'first' (the default)"
start_personad "$TMP/first" --login-max-failures 3 --login-max-failures-addr 6 --login-window-s 60
api POST /v1/accounts -d '{"username":"owner","password":"password-owner"}'
check "first signup: 201" test "$STATUS" = 201
api POST /v1/accounts -d '{"username":"intruder","password":"password-intruder"}'
check "second signup: 403" test "$STATUS" = 403
check "403 says why" test "$(jget 'j["error"]["code"]')" = signup_closed
api POST /v1/accounts -d '{"username":"owner2","password":"short"}'
check "short password: 400" test "$STATUS" = 400

echo "# failed-login limit per username"
for i in 1 2 3; do
    api POST /v1/sessions -d '{"username":"owner","password":"wrong-password"}'
    check "wrong password $i: 401" test "$STATUS" = 401
done
api POST /v1/sessions -d '{"username":"owner","password":"wrong-password"}'
check "past the limit: 429" test "$STATUS" = 429
retry=$(curl -s -D - -o /dev/null -X POST "$PD_URL/v1/sessions" \
    -d '{"username":"owner","password":"password-owner"}' | tr -d '\r' | sed -n 's/^retry-after: //Ip')
check "even the right password gets 429 with Retry-After ($retry s)" test -n "$retry" -a "${retry:-0}" -gt 0
api POST /v1/sessions -d '{"username":"OWNER","password":"password-owner"}'
check "the username limit ignores case" test "$STATUS" = 429

echo "# failed-login limit per address"
for i in 1 2 3; do
    api POST /v1/sessions -d "{\"username\":\"nobody$i\",\"password\":\"wrong-password\"}"
done
api POST /v1/sessions -d '{"username":"someone-else","password":"wrong-password"}'
check "the address is limited after 6 failures over any usernames: 429" test "$STATUS" = 429
stop_personad

echo "# behind a trusted proxy, X-Forwarded-For names the client"
start_personad "$TMP/proxy" --signup open --trusted-proxies "10.9.9.9, 127.0.0.1" \
    --login-max-failures 100 --login-max-failures-addr 3 --login-window-s 60
for i in 1 2 3; do
    api POST /v1/sessions -H "X-Forwarded-For: 203.0.113.7" -d "{\"username\":\"u$i\",\"password\":\"wrong-password\"}"
done
api POST /v1/sessions -H "X-Forwarded-For: 203.0.113.7" -d '{"username":"u9","password":"wrong-password"}'
check "the forwarded address is limited after its 3 failures: 429" test "$STATUS" = 429
api POST /v1/sessions -H "X-Forwarded-For: 203.0.113.8" -d '{"username":"u9","password":"wrong-password"}'
check "another forwarded address is not: 401" test "$STATUS" = 401
api POST /v1/sessions -H "X-Forwarded-For: 203.0.113.8, 203.0.113.7" -d '{"username":"u9","password":"wrong-password"}'
check "the proxy's own (last) entry counts, not what the client claimed first: 429" test "$STATUS" = 429
check "the request log names the forwarded client" grep -q 'peer=203.0.113.8 ' "$PD_LOG"
stop_personad
start_personad "$TMP/noproxy" --signup open --login-max-failures 100 --login-max-failures-addr 3
for i in 1 2 3; do
    api POST /v1/sessions -H "X-Forwarded-For: 203.0.113.$i" -d "{\"username\":\"u$i\",\"password\":\"wrong-password\"}"
done
api POST /v1/sessions -H "X-Forwarded-For: 198.51.100.1" -d '{"username":"u9","password":"wrong-password"}'
check "without a trusted proxy, X-Forwarded-For is ignored: 429 for 127.0.0.1" test "$STATUS" = 429
stop_personad

echo "# policy 'closed' and 'open'"
start_personad "$TMP/closed" --signup closed
api POST /v1/accounts -d '{"username":"a","password":"password-a"}'
check "closed: 403" test "$STATUS" = 403
stop_personad
start_personad "$TMP/open" --signup open
A=$(signup_login alice)
api POST /v1/accounts -d '{"username":"Alice","password":"password-alice"}'
check "usernames are unique regardless of case: 409" test "$STATUS" = 409

echo "# tokens"
for tok in "" "Bearer" "Bearer " "Bearer pst_" "Bearer ${A}x" "Bearer ${A:0:46}" "Basic $A" \
    "Bearer $(printf 'pst_%043d' 0)" "Bearer ${A/pst_/xxx_}"; do
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: $tok" "$PD_URL/v1/me")
    check "malformed authorization '${tok:0:20}…': 401" test "$STATUS" = 401
done
api GET /v1/me -H "Authorization: Bearer $A"
check "the real token: 200" test "$STATUS" = 200

echo "# JSON routes with bad bodies"
for body in '' '{' '{"username":' '[]' '"x"' 'null' '{"username":1,"password":2}' \
    '{"username":"a","password":"password-a","username":"b"}' \
    '{"username":"a\u0000b","password":"password-ab"}' "$(printf '%*s' 3000 | tr ' ' '[')"; do
    api POST /v1/sessions -d "$body"
    check "bad session body '${body:0:24}': 4xx" test "${STATUS:0:1}" = 4
    check "bad session body '${body:0:24}': JSON error" test -n "$(jget 'j["error"]["message"]')"
done
head -c 70000 /dev/zero | tr '\0' 'a' >"$TMP/huge"
api POST /v1/sessions --data-binary "@$TMP/huge"
check "a 70 kB JSON body: 413" test "$STATUS" = 413
api POST /v1/devices -H "Authorization: Bearer $A" -d '{"name":"","kind":"desktop"}'
check "device without a name: 400" test "$STATUS" = 400
api POST /v1/devices -H "Authorization: Bearer $A" -d '{"name":"x","kind":"toaster"}'
check "device of an unknown kind: 400" test "$STATUS" = 400

python3 - "$PD_URL" "$A" <<'PY' >"$TMP/fuzz.out"
import json, random, sys, urllib.request, urllib.error
url, tok = sys.argv[1], sys.argv[2]
rnd = random.Random(1234)
seeds = [b'{"username":"alice","password":"password-alice"}', b'{"name":"d","kind":"desktop"}']
bad = 0
for i in range(300):
    route = rnd.choice(["/v1/sessions", "/v1/accounts", "/v1/devices"])
    kind = rnd.randrange(3)
    if kind == 0:
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
    elif kind == 1:
        s = rnd.choice(seeds)
        body = s[: rnd.randrange(len(s) + 1)]
    else:
        s = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randrange(1, 6)):
            s[rnd.randrange(len(s))] = rnd.randrange(256)
        body = bytes(s)
    req = urllib.request.Request(url + route, data=body, method="POST",
                                 headers={"Authorization": "Bearer " + tok})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            code, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, text = e.code, e.read()
    if code >= 500 or code < 200:
        bad += 1
        print("server error", code, route, body[:60])
    try:
        json.loads(text)
    except Exception:
        bad += 1
        print("not JSON", code, route, text[:80])
print("bad", bad)
PY
check "300 random and mutated JSON bodies: no 5xx, always JSON ($(tail -1 "$TMP/fuzz.out"))" grep -qx 'bad 0' "$TMP/fuzz.out"
api GET /v1/health
check "alive after the fuzzing" test "$STATUS" = 200
finish
