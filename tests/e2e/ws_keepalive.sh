#!/usr/bin/env bash
# ws_keepalive: personad pings silent WebSocket clients and drops those that never answer.
# With ws_ping_idle_s = 1 a client is pinged after 1 s of silence and dropped after 12 s without
# any frame: a normal client (libwebsockets answers pings by itself) stays connected past that,
# a client that reads nothing is dropped.
source "$(dirname "$0")/lib.sh"
: "${WS_CLIENT:?}"
start_personad "$TMP/data" --signup open --ws-ping-idle-s 1
WS_URL=ws://${PD_URL#http://}
A=$(signup_login alice)
set +e
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after 0 --timeout 16 >"$TMP/live.out" 2>&1 &
LIVE=$!
"$WS_CLIENT" --url "$WS_URL" --token "$A" --after 0 --deaf --timeout 16 >"$TMP/deaf.out" 2>&1 &
DEAF=$!
wait "$LIVE"
live_rc=$?
wait "$DEAF"
set -e
check "a client that answers pings stays connected for 16 s (timeout, not closed: rc $live_rc)" test "$live_rc" = 3
check "the deaf client was connected" grep -q ESTABLISHED "$TMP/deaf.out"
check "the deaf client was dropped for not answering pings" grep -q 'event=ws.ping_timeout' "$PD_LOG"
check "only one client was dropped" test "$(grep -c 'event=ws.ping_timeout' "$PD_LOG")" = 1
finish
