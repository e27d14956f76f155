#!/usr/bin/env bash
# restart: the persistent job queue survives kill -9. Uploads several long videos with one job
# worker, kills personad with SIGKILL while a media.process job is running, starts it again on
# the same data dir, and checks that every job completes exactly once in effect: every item
# ready with exactly its four artifacts, one done job per item, the interrupted job counted as a
# second attempt, no duplicate rows and no temp files left.
source "$(dirname "$0")/lib.sh"

DATA=$TMP/data
N=12
start_personad "$DATA" --signup open --workers 1
A=$(signup_login alice)
# Uploads run in parallel so that the queue fills faster than one worker empties it.
ids=()
pids=()
for i in $(seq $N); do
    curl -s -o "$TMP/up.$i" -w '%{http_code}' -H 'Expect:' -H "Authorization: Bearer $A" \
        -H "Content-Type: video/mp4" --data-binary "@$FX/long.mp4" \
        "$PD_URL/v1/media?title=long-$i" >"$TMP/up.$i.status" &
    pids+=($!)
done
wait "${pids[@]}"
# kill -9 at once: the uploads finished together, so the one worker is busy with a queue behind it.
kill -9 "$PD_PID"
while kill -0 "$PD_PID" 2>/dev/null; do sleep 0.05; done
PD_PID=
for i in $(seq $N); do
    check "upload $i: 201" test "$(cat "$TMP/up.$i.status")" = 201
    cp "$TMP/up.$i" "$TMP/body"
    ids+=("$(jget 'j["id"]')")
done
db() { sqlite3 "$DATA/persona.db" "$1"; }
running=$(db "SELECT count(*) FROM jobs WHERE state='running'")
done_before=$(db "SELECT count(*) FROM jobs WHERE state='done'")
check "a job was running when personad was killed ($running)" test "$running" -ge 1
check "the kill interrupted work: $done_before of $N jobs were done" test "$done_before" -lt "$N"

start_personad "$DATA" --signup open --workers 2
for id in "${ids[@]}"; do
    st=$(wait_media "$A" "$id")
    check "item $id ready after restart" test "$st" = ready
    check "item $id has exactly four artifacts" test "$(jget 'len(j["artifacts"])')" = 4
done
check "one done job per item" test "$(db "SELECT count(*) FROM jobs WHERE state='done'")" = "$N"
check "no job still queued or running" test "$(db "SELECT count(*) FROM jobs WHERE state IN ('queued','running')")" = 0
check "the interrupted job ran a second time" test "$(db "SELECT max(attempts) FROM jobs")" -ge 2
check "no duplicate artifact rows" test "$(db "SELECT count(*) FROM artifacts")" = "$((N * 4))"
check "no temp files left" test "$(count_files "$DATA/tmp")" = 0
# The four items share one original and identical derived files: content addressing stores each once.
check "blobs deduplicated: original + 4 derived files" test "$(count_files "$DATA/blobs")" = 5

# A second restart changes nothing.
stop_personad
start_personad "$DATA" --signup open
sleep 1
check "a clean restart reruns nothing" test "$(db "SELECT count(*) FROM jobs WHERE state='done'")" = "$N"
finish
