#!/usr/bin/env bash
# scripts/run.sh BUILD_DIR PORT — what `make run` does after building: starts the text
# generation service (persona-textgen, models in ./data/models, on 127.0.0.1 at PORT+1) and
# personad on ./data pointed at it, prints the URL and how to log in, and stays in the foreground
# until Ctrl-C (which stops both). Extra personad flags can be given with PERSONAD_FLAGS;
# TEXTGEN=0 starts personad alone (extractive answers), TEXTGEN_FLAGS go to persona-textgen.
set -euo pipefail
BUILD=${1:-build}
PORT=${2:-8080}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p data data/models
URL="http://127.0.0.1:$PORT"
TG_PORT=$((PORT + 1))
TG_URL="http://127.0.0.1:$TG_PORT"
TG_PID=
if [ "${TEXTGEN:-1}" != 0 ]; then
    # shellcheck disable=SC2086
    "$BUILD/persona-textgen" serve --models ./data/models --port "$TG_PORT" ${TEXTGEN_FLAGS:-} \
        > data/textgen.stdout 2> data/textgen.log &
    TG_PID=$!
    trap 'kill "$TG_PID" 2>/dev/null; wait "$TG_PID" 2>/dev/null' EXIT
    for _ in $(seq 1 100); do
        grep -q "listening on" data/textgen.stdout 2>/dev/null && break
        kill -0 "$TG_PID" 2>/dev/null || { cat data/textgen.log >&2; echo "persona-textgen failed to start" >&2; exit 1; }
        sleep 0.1
    done
    PERSONAD_FLAGS="--textgen $TG_URL ${PERSONAD_FLAGS:-}"
fi
TG_MSG="off (TEXTGEN=0): answers quote the persona's own words"
[ -n "$TG_PID" ] && TG_MSG="$TG_URL (models in ./data/models, log in data/textgen.log)"
cat <<MSG

persona: starting personad with its data in ./data (SQLite database + blob store).

  API and health:   $URL/v1/health
  Create the account (the first one to sign up owns this server), then log in:
      $BUILD/persona --server $URL signup --username you
  Or with curl:
      curl -X POST $URL/v1/accounts -d '{"username":"you","password":"a long password"}'
      curl -X POST $URL/v1/sessions -d '{"username":"you","password":"a long password"}'
  Upload from the command line:
      $BUILD/persona upload video.mp4
  Train the persona's model on what was uploaded, then ask it:
      $BUILD/persona train --wait && $BUILD/persona ask "what did I say about the sea?"
  Text generation service: $TG_MSG
  Reach it from your phone: make run PERSONAD_FLAGS='--host 0.0.0.0' (and see docs/deploy.md for TLS).
  Stop with Ctrl-C.

MSG
# shellcheck disable=SC2086
if [ -z "$TG_PID" ]; then
    exec "$BUILD/personad" --port "$PORT" --data-dir ./data ${PERSONAD_FLAGS:-}
fi
"$BUILD/personad" --port "$PORT" --data-dir ./data ${PERSONAD_FLAGS:-} &
PD_PID=$!
trap 'kill "$PD_PID" "$TG_PID" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
wait "$PD_PID"
