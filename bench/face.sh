#!/usr/bin/env bash
# bench/face.sh BUILD_DIR: the face engine (src/face) against the reference JavaScript
# implementation (face-api 1.7.15 on tfjs 4.22, wasm backend, in Node), same pictures, same
# machine, same run. C side: bench/face_bench.c (per-stage times at 1 and 2 threads on a 640x480
# frame, full-pipeline frames/s, the whole pipeline on sample1.jpg, video analysis at 2 frames/s
# as x real time); reference side: bench/face_reference_bench.js (median of the whole pipeline);
# then the ratio for each picture and detector.
# Setup, not run time: the reference's npm packages (tests/tools/face-reference/package.json and
# its lock) are installed with `npm ci` into BUILD_DIR/face-ref when missing or out of date; the
# test frame and the 60 s video are made with the ffmpeg CLI and cached in bench/out/face-media.
# Results: bench/out/face/summary.txt. About 1 minute on 2 cores. Options by environment:
# BENCH_FACE_RUNS (C runs per median, 10), BENCH_FACE_REF_RUNS (reference runs, 5).
set -euo pipefail
BUILD=$(cd "${1:?usage: bench/face.sh BUILD_DIR}" && pwd)
source "$(dirname "$0")/lib.sh"
D=$OUT_DIR/face
MEDIA=$OUT_DIR/face-media
rm -rf "$D"; mkdir -p "$D" "$MEDIA"
BIN=$BUILD/bench/face_bench
[ -x "$BIN" ] || { echo "bench: $BIN is missing; build first" >&2; exit 1; }
bench_need_pkgs ffmpeg
# Debian's nodejs + npm, unless a node with its own npm is there (as scripts/bootstrap.sh does).
command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || bench_need_pkgs nodejs npm
MODELS=${PERSONA_FACE_MODELS:-$REPO_DIR/data/models/face-api}
[ -f "$MODELS/SHA256SUMS" ] || PERSONA_MODELS="$(dirname "$MODELS")" "$REPO_DIR/scripts/fetch_models.sh"

# The reference's packages, exactly as locked.
REF=$BUILD/face-ref
PKG=$REPO_DIR/tests/tools/face-reference
HAVE_REF=1
if ! cmp -s "$PKG/package-lock.json" "$REF/package-lock.json" || [ ! -d "$REF/node_modules" ]; then
    echo "bench: installing the reference's npm packages into $REF (npm ci)" >&2
    rm -rf "$REF"; mkdir -p "$REF"
    cp "$PKG/package.json" "$PKG/package-lock.json" "$REF/"
    if ! (cd "$REF" && npm ci --ignore-scripts --no-audit --no-fund >&2); then
        # Offline: the C figures still mean something; say plainly that the comparison is missing.
        echo "bench: npm ci failed; the reference is skipped" >&2
        rm -rf "$REF"
        HAVE_REF=0
    fi
fi

# A 640x480 frame with one face (sample1's middle face), and 60 s of video of it with a slow
# zoom, 640x480 H.264 at 25 frames/s.
STILL=$MODELS/sample1.jpg
FRAME=$MEDIA/frame640x480.png
VIDEO=$MEDIA/face60s-640x480.mp4
VIDEO_S=60
[ -s "$FRAME" ] || ffmpeg -nostdin -v error -y -i "$STILL" \
    -vf "format=rgb24,crop=640:480:612:333" -frames:v 1 "$FRAME"
if [ ! -s "$VIDEO" ]; then
    echo "bench: making $VIDEO (cached)" >&2
    ffmpeg -nostdin -v error -y -i "$FRAME" \
        -vf "zoompan=z='1+0.3*on/1500':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1500:s=640x480:fps=25,format=yuv420p" \
        -c:v libx264 -preset veryfast -t "$VIDEO_S" "$VIDEO.tmp.mp4"
    mv "$VIDEO.tmp.mp4" "$VIDEO"
fi

{
    echo "== faces: C engine (face_bench), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BIN" "$MODELS" "$STILL" "$FRAME" "$VIDEO" "$VIDEO_S" "${BENCH_FACE_RUNS:-10}"
    echo
    echo "== faces: reference (face-api 1.7.15, tfjs 4.22 wasm backend, Node $(node --version)), load $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$HAVE_REF" = 1 ]; then
        node "$REPO_DIR/bench/face_reference_bench.js" --modules "$REF" --models "$MODELS" \
            --runs "${BENCH_FACE_REF_RUNS:-5}" --warmup 1 "$STILL" "$FRAME"
    else
        echo "reference: skipped (its npm packages could not be installed)"
    fi
} 2>&1 | tee "$D/raw.txt"

# Ratio: reference median over C median (and fastest over fastest), per picture, detector and C
# thread count.
{
    echo
    echo "== faces: whole pipeline, reference wasm / C, median (fastest), same pictures, same run"
    awk '
        function val(f) { sub(/^[a-z_]+=/, "", f); return f + 0 }
        $1 == "ref" { ref[$3 " " $4] = val($5); refmin[$3 " " $4] = val($6) }
        $1 == "c"   { k = $2 " " $3; n = val($4); c[k, n] = val($5); cmin[k, n] = val($6) }
        END {
            for (k in ref) {
                line = sprintf("  %-24s ref %7.1f (%7.1f) ms", k, ref[k], refmin[k])
                for (n = 1; n <= 2; n++)
                    if ((k, n) in c)
                        line = line sprintf(" | C %d thr %6.1f (%6.1f) ms %5.1fx (%5.1fx)", n,
                                            c[k, n], cmin[k, n], ref[k] / c[k, n], refmin[k] / cmin[k, n])
                print line
            }
        }' "$D/raw.txt" | sort
} | tee "$D/ratio.txt"
cat "$D/raw.txt" "$D/ratio.txt" > "$D/summary.txt"
