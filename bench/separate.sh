#!/usr/bin/env bash
# bench/separate.sh BUILD_DIR: time persona's separation of a 10-minute 1280x720 H.264/AAC MP4
# (media_split alone, via bench/separate_bench) against the ffmpeg CLI doing the same stream
# copies, one after the other in the same run:
#     ffmpeg -i in.mp4 -map 0:a -c copy a.m4a      ffmpeg -i in.mp4 -map 0:v -c copy v.mp4
# The CLI figure is the sum of the two commands (each reads the input once; media_split reads it
# once and feeds both muxers). The input is read from the page cache (read once beforehand).
# BENCH_SEP_RUNS (default 3) alternating rounds CLI, persona; the median is the figure, all runs
# are printed. Then, once each: persona's 16 kHz mono PCM decode and thumbnail, with the ffmpeg CLI
# equivalents as references. Outputs are checked with ffprobe (one stream, same duration).
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/separate.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
bench_need_pkgs ffmpeg pkg-config gcc

D=$OUT_DIR/separate
rm -rf "$D"; mkdir -p "$D"
RES=$D/results.txt; : > "$RES"
RUNS=${BENCH_SEP_RUNS:-3}
IN=$(bench_video10)

# separate_bench: from the build dir when the project builds it (add_subdirectory(bench)),
# otherwise compiled here against the build dir's module libraries.
SB=$BUILD/bench/separate_bench
if [ ! -x "$SB" ]; then
    SB=$D/separate_bench
    gcc -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -I"$REPO_DIR/src" \
        "$BENCH_DIR/separate_bench.c" "$BUILD/libpersona_media.a" "$BUILD/libpersona_core.a" \
        $(pkg-config --libs libavformat libavcodec libavutil libswscale libswresample) -lm -lpthread \
        -o "$SB"
fi

t() { local t0; t0=$(bench_now); "$@"; echo "$(bench_now) - $t0" | bc; }
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }
dur() { ffprobe -v error -show_entries format=duration:stream=codec_type -of compact=p=0:nk=1 "$1" | tr '\n' ' '; }

split_rounds() { # LABEL INPUT RUNS
    local label=$1 in=$2 runs=$3 i ta tv f
    cat "$in" > /dev/null
    echo "input_$label $(basename "$in") $(ffprobe -v error -show_entries format=duration,size,bit_rate -of compact=p=0 "$in")" | tee -a "$RES"
    for i in $(seq 1 "$runs"); do
        # outputs are written to the page cache; `sync` before each timed step so that no step
        # pays for the writeback of the one before
        rm -f "$D"/cli.* "$D"/persona.*; sync
        ta=$(t ff -i "$in" -map 0:a -c copy "$D/cli.a.m4a"); sync
        tv=$(t ff -i "$in" -map 0:v -c copy "$D/cli.v.mp4"); sync
        echo "cli_split_$label run=$i audio_s=$ta video_s=$tv s=$(echo "$ta + $tv" | bc)" | tee -a "$RES"
        "$SB" "$in" "$D/persona" split | sed "s/^split /persona_split_$label run=$i /" | tee -a "$RES"
    done
    # the last outputs: one stream each, the input's duration
    for f in "$D"/cli.a.m4a "$D"/cli.v.mp4 "$D"/persona.audio.m4a "$D"/persona.video.mp4; do
        echo "check_$label $(basename "$f") bytes=$(stat -c %s "$f") streams+duration=\"$(dur "$f")\"" | tee -a "$RES"
    done
    rm -f "$D"/cli.* "$D"/persona.*
}

split_rounds 10min "$IN" "$RUNS"
# The same on the ~1 GiB phone-bit-rate MP4 of the upload benchmark when it exists (I/O bound).
BIG=$OUT_DIR/upload-1g.mp4
[ -s "$BIG" ] && split_rounds 1gib "$BIG" "$RUNS"

# PCM and thumbnail, once each, with CLI references
cat "$IN" > /dev/null
"$SB" "$IN" "$D/persona" pcm thumb | sed 's/^/persona_/' | tee -a "$RES"
tp=$(t ff -i "$IN" -map 0:a -ac 1 -ar 16000 -c:a pcm_s16le "$D/cli.pcm.wav")
echo "cli_pcm s=$tp" | tee -a "$RES"
tt=$(t ff -ss 5 -i "$IN" -frames:v 1 -vf scale=320:-2 "$D/cli.thumb.jpg")
echo "cli_thumb s=$tt" | tee -a "$RES"

python3 - "$RES" <<'PY' | tee "$D/summary.txt"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def kv(r): return dict(x.split("=", 1) for x in r[1:] if "=" in x)
one = {r[0]: r for r in rows}
for label, title in (("10min", "a 10-minute 1280x720 H.264/AAC MP4 (testsrc+sine, ultrafast)"),
                     ("1gib", "the ~1 GiB 1280x720/30 16 Mbit/s MP4 of the upload benchmark")):
    cli = [float(kv(r)["s"]) for r in rows if r[0] == "cli_split_" + label]
    per = [float(kv(r)["s"]) for r in rows if r[0] == "persona_split_" + label]
    if not cli:
        continue
    mc, mp = statistics.median(cli), statistics.median(per)
    print("Separation of %s: %s" % (title, " ".join(one["input_" + label][1:])))
    print("  ffmpeg CLI, two stream copies: median %.3f s  runs %s" % (mc, " ".join("%.3f" % x for x in cli)))
    print("  persona media_split:          median %.3f s  runs %s" % (mp, " ".join("%.3f" % x for x in per)))
    print("  persona/CLI = %.2fx (target <= 1.2x: %s)" % (mp / mc, "met" if mp / mc <= 1.2 else "MISSED"))
p, c = kv(one["persona_pcm"]), kv(one["cli_pcm"])
print("16 kHz mono PCM decode (10-min input): persona %.3f s, ffmpeg CLI %.3f s" % (float(p["s"]), float(c["s"])))
p, c = kv(one["persona_thumb"]), kv(one["cli_thumb"])
print("thumbnail (JPEG, 320 px, frame at 5 s): persona %.3f s, ffmpeg CLI %.3f s" % (float(p["s"]), float(c["s"])))
PY
