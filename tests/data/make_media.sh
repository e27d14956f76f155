#!/usr/bin/env bash
# make_media.sh OUTDIR — makes the media fixtures every test that needs media shares, with the
# ffmpeg CLI: short clips in each container we accept, still images (colour, greyscale, alpha,
# CMYK), and bad inputs (truncated, random, empty, text). Idempotent: does nothing when
# OUTDIR/.done exists and is newer than this script; .done is written last, so an interrupted run
# starts over.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
self=${BASH_SOURCE[0]}
if [[ -f "$out/.done" && "$out/.done" -nt "$self" ]]; then
    exit 0
fi
mkdir -p "$out"
rm -f "$out/.done"

ff() { ffmpeg -hide_banner -nostdin -loglevel error -y "$@"; }

# 3 s of test pattern and a 440 Hz tone; every clip is made from these.
vsrc=(-f lavfi -i "testsrc=size=320x240:rate=25:duration=3")
asrc() { echo "sine=frequency=440:sample_rate=$1:duration=3"; }
x264=(-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 25)

# Independent clips run in parallel. A half-written file from an interrupted run is simply
# overwritten next time (-y), since .done is missing.
pids=()
run() { "$@" & pids+=($!); }

run ff "${vsrc[@]}" -f lavfi -i "$(asrc 44100)" "${x264[@]}" -c:a aac -ac 2 -b:a 96k \
    -movflags +faststart -shortest "$out/clip.mp4"
run ff "${vsrc[@]}" -f lavfi -i "$(asrc 44100)" "${x264[@]}" -c:a libvorbis -ac 2 -q:a 2 \
    -shortest "$out/clip.mkv"
run ff "${vsrc[@]}" -f lavfi -i "$(asrc 48000)" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 \
    -b:v 300k -pix_fmt yuv420p -g 25 -c:a libopus -ac 2 -b:a 64k -shortest "$out/clip.webm"
run ff "${vsrc[@]}" -f lavfi -i "$(asrc 44100)" "${x264[@]}" -c:a aac -ac 2 -b:a 96k \
    -f mov -shortest "$out/clip.mov"
run ff -f lavfi -i "$(asrc 44100)" -c:a aac -ac 2 -b:a 96k "$out/clip.m4a"
run ff -f lavfi -i "$(asrc 44100)" -c:a libmp3lame -ac 2 -b:a 128k "$out/clip.mp3"
run ff -f lavfi -i "$(asrc 48000)" -c:a pcm_s16le -ac 2 "$out/clip.wav"
run ff -f lavfi -i "testsrc=size=640x480:rate=1" -frames:v 1 -update 1 "$out/still.png"
run ff -f lavfi -i "testsrc=size=640x480:rate=1" -frames:v 1 -update 1 -q:v 3 "$out/still.jpg"
run ff -f lavfi -i "testsrc=size=320x240:rate=1" -frames:v 1 -update 1 -pix_fmt gray \
    "$out/gray.png"
run ff -f lavfi -i "testsrc=size=320x240:rate=1" -vf "format=rgba,colorchannelmixer=aa=0.5" \
    -frames:v 1 -update 1 -pix_fmt rgba "$out/alpha.png"
# moov at the end (no faststart), then cut: the index a demuxer needs is missing.
run bash -c 'set -e
    ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i "$1" -f lavfi -i "$2" \
        -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -ac 2 -shortest "$3.full.mp4"
    size=$(stat -c %s "$3.full.mp4")
    head -c $((size * 60 / 100)) "$3.full.mp4" >"$3.part"
    rm -f "$3.full.mp4"
    mv "$3.part" "$3"' _ "testsrc=size=320x240:rate=25:duration=3" "$(asrc 44100)" \
    "$out/truncated.mp4"
# 60 s of 720p for the kill -9 restart tests: long enough to be caught mid-processing.
run ff -f lavfi -i "testsrc=size=1280x720:rate=25:duration=60" \
    -f lavfi -i "sine=frequency=330:sample_rate=44100:duration=60" \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 50 -c:a aac -ac 2 -b:a 64k \
    -shortest "$out/long.mp4"

# CMYK JPEG (Adobe, inverted), which FFmpeg's CLI cannot make: a committed 200x150 picture of
# cyan, magenta, yellow and black quadrants, made once with libjpeg.
cp "$(dirname "$self")/cmyk.jpg" "$out/cmyk.jpg"
head -c 65536 /dev/urandom >"$out/random.mp4"
: >"$out/empty.bin"
printf '%s\n' "Notes from the garden, written on a Sunday." \
    "Café au lait, crème brûlée — naïve coöperation." \
    "Grüße aus Köln; 日本語のテキスト; emoji 🙂." >"$out/notes.txt"
# A lone continuation byte, an overlong encoding and a truncated sequence.
printf 'valid start \x80 then \xc0\xaf and \xe2\x82\n' >"$out/badutf8.txt"

status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
if [[ $status -ne 0 ]]; then
    echo "make_media.sh: some fixtures failed to build" >&2
    exit 1
fi
touch "$out/.done"
