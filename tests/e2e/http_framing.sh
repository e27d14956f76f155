#!/usr/bin/env bash
# http_framing: the request framing rules personad enforces on top of libwebsockets (strict
# Content-Length, no Transfer-Encoding, 411, oversized headers), pipelining, garbage on the
# socket, HTTP/2 refused, and TLS with a self-signed certificate made by the openssl CLI.
source "$(dirname "$0")/lib.sh"

start_personad "$TMP/data" --signup open --http-timeout-s 3
PORT=${PD_URL##*:}

# raw REQUEST-AS-PYTHON-BYTES-LITERAL — sends it on a fresh socket; prints what came back.
raw() {
    python3 - "$PORT" "$1" <<'PY'
import socket, sys, time
port, payload = int(sys.argv[1]), eval(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(payload)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d: break
        out += d
        if out.count(b"HTTP/1.1") >= 2 or (b"\r\n\r\n" in out and b"connection: close" not in out.lower() and len(out) > 100 and payload.count(b"HTTP/1.1") < 2):
            time.sleep(0.2)
            try:
                s.settimeout(0.3); d = s.recv(65536); out += d
            except Exception: pass
            break
except socket.timeout:
    pass
sys.stdout.write(out.decode("latin-1"))
PY
}
status_of() { head -1 | awk '{print $2}'; }

r=$(raw 'b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"')
check "negative Content-Length: 400" test "$(status_of <<<"$r")" = 400
r=$(raw 'b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"')
check "repeated Content-Length: 400" test "$(status_of <<<"$r")" = 400
r=$(raw 'b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}"')
check "malformed Content-Length: 400" test "$(status_of <<<"$r")" = 400
r=$(raw 'b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"')
check "Transfer-Encoding with Content-Length: 400" test "$(status_of <<<"$r")" = 400
r=$(raw 'b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"')
check "chunked body: 411" test "$(status_of <<<"$r")" = 411
r=$(raw 'b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n\r\n"')
check "POST without Content-Length: 411" test "$(status_of <<<"$r")" = 411
r=$(raw 'b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"')
check "two pipelined requests get two answers" test "$(grep -c '^HTTP/1.1 200' <<<"$r")" = 2
r=$(raw 'b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a"*10000 + b"\r\n\r\n"')
check "a 10 kB header is accepted" test "$(status_of <<<"$r")" = 200
raw 'b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a"*40000 + b"\r\n\r\n"' >/dev/null || true
raw 'bytes(range(256))*64' >/dev/null || true
raw 'b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00"*500' >/dev/null || true
api GET /v1/health
check "server alive after oversized headers and garbage" test "$STATUS" = 200
v=$(curl -s -o /dev/null -w '%{http_code} %{http_version}' --http2 "$PD_URL/v1/health")
check "h2c upgrade is refused with 400, not upgraded ($v)" test "${v%% *}" = 400 -a "${v##* }" != 2
api GET /v1/nothing
check "unknown path: 404" test "$STATUS" = 404
api PUT /v1/health -d '{}'
check "wrong method: 405" test "$STATUS" = 405
stop_personad

echo "# TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
start_personad "$TMP/data-tls" --signup open --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"
check "listening line says https" grep -q '^personad listening on https://' "$TMP/pd.out"
code=$(curl -s -o /dev/null -w '%{http_code} %{http_version}' --cacert "$TMP/cert.pem" --http2 "$PD_URL/v1/health")
check "TLS health: 200 over HTTP/1.1, not h2 ($code)" test "$code" = "200 1.1"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PD_URL##*:}/v1/health" || true)
check "plain HTTP on the TLS port does not get an answer ($code)" test "$code" != 200
api POST /v1/accounts --cacert "$TMP/cert.pem" -d '{"username":"tls","password":"password-tls"}'
check "account over TLS: 201" test "$STATUS" = 201
finish
