# tests/e2e/lib.sh: shared helpers for the end-to-end tests — start a real personad on a free
# port with a fresh data dir, call its API with curl, read JSON with python3, count checks.
# Needs PERSONAD, PERSONA_FIXTURES, PERSONA_TEST_TMP (set by persona_e2e_test).
set -euo pipefail
: "${PERSONAD:?}" "${PERSONA_FIXTURES:?}" "${PERSONA_TEST_TMP:?}"
TMP=$PERSONA_TEST_TMP
FX=$PERSONA_FIXTURES
rm -rf "$TMP"
mkdir -p "$TMP"

PASSED=0
FAILED=0
PD_PID=
PD_URL=
PD_LOG=

ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
bad() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
# check DESCRIPTION TEST-COMMAND...
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
    # A clean stop lets LeakSanitizer run; any sanitizer report in a personad log is a failure.
    stop_personad
    local reports
    reports=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/personad.*.log 2>/dev/null || true)
    if [[ -n $reports ]]; then
        bad "sanitizer reports in: $reports"
        grep -h -A 20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $reports | head -60
    else
        ok "no sanitizer report in personad's logs"
    fi
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}

stop_personad() {
    if [[ -n $PD_PID ]] && kill -0 "$PD_PID" 2>/dev/null; then
        kill "$PD_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$PD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PD_PID" 2>/dev/null || true
        wait "$PD_PID" 2>/dev/null || true
    fi
    PD_PID=
}
trap 'stop_personad' EXIT

# start_personad DATA_DIR [FLAGS...] — starts personad and waits for its listening line.
start_personad() {
    local dir=$1
    shift
    PD_LOG=$TMP/personad.$(date +%s%N).log
    # ctest gives every test PERSONA_FACE_MODELS (where the models are), which is also the
    # environment form of personad's face_models setting: a test that wants faces analysed says
    # so with --face-models, the others keep the default (no models in their data dir, so the
    # faces step is skipped with its reason) and stay about what they test.
    # The child truncates pd.out only once it runs: empty it here first, or a restart's wait
    # can read the previous run's listening line and then an empty URL.
    : >"$TMP/pd.out"
    env -u PERSONA_FACE_MODELS "$PERSONAD" --port 0 --data-dir "$dir" --log-level info "$@" >"$TMP/pd.out" 2>"$PD_LOG" &
    PD_PID=$!
    for _ in $(seq 300); do
        if grep -q '^personad listening on ' "$TMP/pd.out" 2>/dev/null; then
            PD_URL=$(sed -n 's/^personad listening on \(.*\)$/\1/p' "$TMP/pd.out" | head -1)
            return 0
        fi
        kill -0 "$PD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "personad did not start:" >&2
    cat "$PD_LOG" >&2
    return 1
}

# api METHOD PATH [CURL-ARGS...] — body to $TMP/body, status to $STATUS (and stdout).
api() {
    local method=$1 path=$2
    shift 2
    STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -X "$method" -H 'Expect:' \
        "$@" "$PD_URL$path" || true)
}
# download PATH FILE [CURL-ARGS...] — body to FILE, status to $STATUS.
download() {
    local path=$1 file=$2
    shift 2
    STATUS=$(curl -s -o "$file" -w '%{http_code}' "$@" "$PD_URL$path" || true)
}
# jget EXPR — evaluates a python expression over the JSON in $TMP/body as `j`.
jget() {
    python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
v=eval(sys.argv[2])
print("" if v is None else (json.dumps(v) if isinstance(v,(dict,list,bool)) else v))' "$TMP/body" "$1"
}

# signup_login USER — creates an account and prints a token.
signup_login() {
    api POST /v1/accounts -d "{\"username\":\"$1\",\"password\":\"password-$1\"}"
    api POST /v1/sessions -d "{\"username\":\"$1\",\"password\":\"password-$1\",\"device_name\":\"phone\"}"
    jget 'j["token"]'
}

# wait_media TOKEN ID — waits until the item is ready or failed; prints the status.
wait_media() {
    local st=
    for _ in $(seq 600); do
        api GET "/v1/media/$2" -H "Authorization: Bearer $1"
        st=$(jget 'j.get("status")')
        [[ $st == ready || $st == failed ]] && break
        sleep 0.1
    done
    echo "$st"
}

# ffprobe helpers
probe_streams() { ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$1" | sort | tr '\n' ' '; }
probe_duration() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }
# stream duration of the first stream of a type (a|v) in a file
probe_stream_duration() {
    local d
    d=$(ffprobe -v error -select_streams "$2:0" -show_entries stream=duration -of csv=p=0 "$1")
    if [[ -z $d || $d == N/A ]]; then d=$(probe_duration "$1"); fi
    echo "$d"
}
close_to() { python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1])-float(sys.argv[2]))<=float(sys.argv[3]) else 1)' "$1" "$2" "$3"; }
count_files() { find "$1" -type f 2>/dev/null | wc -l; }
