#!/usr/bin/env bash
# bench/upload.sh BUILD_DIR: a 1 GiB body over loopback to POST /v1/media?kind=video — MB/s and
# personad's RSS growth while it receives.
#   The body is a real MP4 at a phone-like bit rate: a 20 s 1280x720/30 H.264 (16 Mbit/s, noise on
#   testsrc2) + AAC clip looped with `ffmpeg -stream_loop ... -c copy -fs` to ~1 GiB (~8.7 min,
#   a few seconds to make), so it is accepted with 201.
#   BENCH_UPLOAD_RANDOM=1 sends 1 GiB of random bytes instead (415 once fully received and probed).
#   Two runs: `curl -T FILE` (curl waits ~1 s for a 100 Continue that lws never sends) and
#   `curl -T FILE -H 'Expect:'`. A fresh personad for each, killed after the answer so that its
#   media.process job does not run during the next measurement.
#   RSS: /proc/PID/status VmRSS sampled every 50 ms with /proc/PID/io wchar (to tell when the whole
#   body is written), and VmHWM before/after. VmHWM is already ~95 MiB before the upload: the
#   argon2id hashes of signup/login (libsodium, 64 MiB each) set it, so only its growth counts.
#   The data dir lives under bench/out/ (the repo's disk, not tmpfs); blobs are fsynced before 201.
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/upload.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
bench_need_pkgs curl ffmpeg

D=$OUT_DIR/upload
rm -rf "$D"; mkdir -p "$D"
RES=$D/results.txt; : > "$RES"
trap 'bench_personad_stop; [ -n "${SAMPLER_PID:-}" ] && kill "$SAMPLER_PID" 2>/dev/null; true' EXIT

GIB=$((1024 * 1024 * 1024))
if [ "${BENCH_UPLOAD_RANDOM:-0}" = 1 ]; then
    BODY=$OUT_DIR/upload-1g.bin; KINDDESC="random bytes (answered 415 after the whole body is received)"
    if [ ! -s "$BODY" ]; then head -c "$GIB" /dev/urandom > "$BODY.tmp" && mv "$BODY.tmp" "$BODY"; fi
else
    BODY=$OUT_DIR/upload-1g.mp4; KINDDESC="a real H.264/AAC MP4 (answered 201)"
    if [ ! -s "$BODY" ]; then
        t0=$(bench_now)
        SRC=$OUT_DIR/clip-20s-16mbps.mp4
        ffmpeg -nostdin -loglevel error -y \
            -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=20,noise=alls=30:allf=t" \
            -f lavfi -i sine=frequency=440:duration=20 -c:v libx264 -preset ultrafast \
            -b:v 16M -maxrate 16M -bufsize 16M -pix_fmt yuv420p -c:a aac -b:a 128k -shortest "$SRC"
        # -fs stops the packets; the moov index (~0.5 MB) follows.
        ffmpeg -nostdin -loglevel error -y -stream_loop 30 -i "$SRC" -map 0 -c copy \
            -fs $((GIB - 1024 * 1024)) "$BODY.tmp.mp4"
        mv "$BODY.tmp.mp4" "$BODY"
        echo "bench: made $BODY in $(echo "$(bench_now) - $t0" | bc) s" >&2
    fi
fi
SIZE=$(stat -c %s "$BODY")
cat "$BODY" > /dev/null   # the source file comes from the page cache, not the disk
FS=$(df --output=source,fstype "$OUT_DIR" | tail -1 | tr -s ' ')
echo "body bytes=$SIZE kind=\"$KINDDESC\" data_dir_fs=\"$FS\"" | tee -a "$RES"

# Disk ceiling for reference: the same bytes written and fsynced by dd.
rm -f "$D/dd.out"
DD=$(dd if="$BODY" of="$D/dd.out" bs=1M conv=fsync 2>&1 | tail -1)
rm -f "$D/dd.out"
echo "dd_fsync $DD" | tee -a "$RES"

kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$PERSONAD_PID/status"; }

run_upload() { # name extra-curl-args...
    local name=$1; shift
    local data=$D/data-$name
    bench_personad_start "$BUILD" "$data" "$D/personad-$name.log"
    local tok; tok=$(bench_token "$PERSONAD_URL")
    local rss0 hwm0; rss0=$(kb VmRSS); hwm0=$(kb VmHWM)
    # every 50 ms: "VmRSS_kB bytes_read_so_far" (wchar of /proc/PID/io: body bytes written to the blob file; socket reads are not counted in rchar)
    local pid=$PERSONAD_PID
    ( while [ -e "/proc/$pid/status" ]; do
          r=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null)
          c=$(sed -n 's/^wchar: \([0-9]*\)/\1/p' "/proc/$pid/io" 2>/dev/null)
          [ -n "$r" ] && echo "$r $c"
          sleep 0.05
      done ) > "$D/rss-$name.txt" &
    SAMPLER_PID=$!
    local w
    w=$(curl -s -o "$D/answer-$name.json" -X POST -T "$BODY" "$@" \
        -H "Authorization: Bearer $tok" -H 'Content-Type: video/mp4' \
        -w '%{http_code} %{time_total} %{time_starttransfer} %{size_upload}' \
        "$PERSONAD_URL/v1/media?kind=video&title=upload")
    local hwm1 rss1; hwm1=$(kb VmHWM); rss1=$(kb VmRSS)
    kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
    kill -9 "$PERSONAD_PID" 2>/dev/null; wait "$PERSONAD_PID" 2>/dev/null || true; PERSONAD_PID=
    rm -rf "$data"
    python3 - "$name" "$w" "$rss0" "$hwm0" "$hwm1" "$rss1" "$D/rss-$name.txt" <<'PY' | tee -a "$RES"
import sys
name, w, rss0, hwm0, hwm1, rss1, f = sys.argv[1:]
code, t, tfirst, up = w.split()
t, up = float(t), int(up)
rows = [tuple(int(v) for v in x.split()) for x in open(f) if len(x.split()) == 2]
c0 = rows[0][1] if rows else 0
# receiving: from the first sample until personad has written the whole body to its blob file
recv = [r for r, c in rows if c - c0 < up]
recv_peak = max(recv) if recv else int(rss0)
peak = max([r for r, _ in rows] + [int(rss1)])
print("%s status=%s bytes=%d s=%.2f MBps=%.0f MiBps=%.0f rss_before_kib=%s "
      "recv_rss_peak_kib=%d recv_growth_mib=%.1f overall_rss_peak_kib=%d overall_growth_mib=%.1f "
      "hwm_growth_mib=%.1f samples=%d"
      % (name, code, up, t, up / t / 1e6, up / t / 2**20, rss0, recv_peak,
         (recv_peak - int(rss0)) / 1024, peak, (peak - int(rss0)) / 1024,
         (int(hwm1) - int(hwm0)) / 1024, len(rows)))
PY
}

run_upload curl_T
run_upload curl_T_noexpect -H 'Expect:'

python3 - "$RES" <<'PY' | tee "$D/summary.txt"
import sys
res = {}
for line in open(sys.argv[1]):
    name, *kv = line.split(" ", 1)
    res[name] = kv[0].strip() if kv else ""
print("Upload (1 GiB over loopback, %s)" % res["body"])
print("disk reference: dd bs=1M conv=fsync: %s" % res["dd_fsync"])
for n in ("curl_T", "curl_T_noexpect"):
    r = dict(x.split("=") for x in res[n].split())
    mbps, g = float(r["MBps"]), float(r["recv_growth_mib"])
    print("%-16s HTTP %s  %s s  %s MB/s (target >= 450: %s)  RSS growth while receiving %.1f MiB "
          "(target < 32: %s); up to the answer (probe, job start) %s MiB, VmHWM +%s MiB"
          % (n, r["status"], r["s"], r["MBps"], "met" if mbps >= 450 else "MISSED", g,
             "met" if g < 32 else "MISSED", r["overall_growth_mib"], r["hwm_growth_mib"]))
PY
