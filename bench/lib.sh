# bench/lib.sh: helpers shared by the benchmark scripts (sourced, not run).
# Every script takes BUILD_DIR as $1 and writes under bench/out/.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
OUT_DIR=${BENCH_OUT:-$BENCH_DIR/out}
mkdir -p "$OUT_DIR"

# Installs Debian packages only when dpkg-query says they are missing (a second run costs nothing).
bench_need_pkgs() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bench: installing ${missing[*]}" >&2
        local sudo=
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

# A free TCP port on 127.0.0.1 (bound and released; fine for a benchmark on a quiet box).
bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something accepts connections on 127.0.0.1:$1 (at most ~10 s).
bench_wait_port() {
    local i
    for i in $(seq 1 200); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}

# bench_personad_start BUILD DATA_DIR LOGFILE [extra flags...]
# Sets PERSONAD_PID and PERSONAD_URL.
bench_personad_start() {
    local build=$1 data=$2 log=$3; shift 3
    local outf="$data.stdout"
    mkdir -p "$data"
    : > "$outf"
    "$build/personad" --port 0 --data-dir "$data" --signup open --log-requests false "$@" \
        >"$outf" 2>"$log" &
    PERSONAD_PID=$!
    local i
    for i in $(seq 1 200); do
        PERSONAD_URL=$(sed -n 's/^personad listening on \(http:[^ ]*\).*/\1/p' "$outf" | head -1)
        [ -n "$PERSONAD_URL" ] && return 0
        kill -0 "$PERSONAD_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench: personad did not start; log:" >&2
    tail -20 "$log" >&2
    return 1
}

bench_personad_stop() {
    if [ -n "${PERSONAD_PID:-}" ]; then
        kill "$PERSONAD_PID" 2>/dev/null || true
        wait "$PERSONAD_PID" 2>/dev/null || true
        PERSONAD_PID=
    fi
}

# JSON field of stdin: bench_json KEY
bench_json() {
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(v[sys.argv[1]])' "$1"
}

# Creates an account and logs in; prints the bearer token.
bench_token() {
    local url=$1 user=${2:-bench} pass=${3:-bench-password-1}
    curl -sf -X POST "$url/v1/accounts" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$pass\"}" >/dev/null
    curl -sf -X POST "$url/v1/sessions" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$pass\",\"device_name\":\"bench\"}" | bench_json token
}

# The 10-minute 1280x720 H.264/AAC MP4 of the separation benchmark, made once and cached.
bench_video10() {
    local f="$OUT_DIR/video10m-720p.mp4"
    if [ ! -s "$f" ]; then
        echo "bench: making $f (10 min 1280x720 H.264/AAC, ultrafast; cached)" >&2
        ffmpeg -nostdin -loglevel error -y \
            -f lavfi -i testsrc=size=1280x720:rate=25:duration=600 \
            -f lavfi -i sine=frequency=440:sample_rate=44100:duration=600 \
            -map 0:v -map 1:a -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
            -c:a aac -b:a 128k -ac 2 -shortest "$f.tmp.mp4" && mv "$f.tmp.mp4" "$f"
    fi
    echo "$f"
}

# Seconds with nanoseconds.
bench_now() { date +%s.%N; }
