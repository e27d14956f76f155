#!/usr/bin/env bash
# scripts/run.sh BUILD_DIR PORT — what `make run` does after building: starts personad on
# ./data with the embedded defaults (SQLite + blob store), prints the URL and how to log in, and
# stays in the foreground until Ctrl-C. Extra personad flags can be given with PERSONAD_FLAGS.
set -euo pipefail
BUILD=${1:-build}
PORT=${2:-8080}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p data
URL="http://127.0.0.1:$PORT"
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
  Reach it from your phone: make run PERSONAD_FLAGS='--host 0.0.0.0' (and see docs/deploy.md for TLS).
  Stop with Ctrl-C.

MSG
# shellcheck disable=SC2086
exec "$BUILD/personad" --port "$PORT" --data-dir ./data ${PERSONAD_FLAGS:-}
