#!/usr/bin/env bash
# Installs the Debian 12 packages that persona's build, tests and benchmarks need.
# Idempotent: asks dpkg what is already there and runs apt-get only for what is missing, so a
# second run takes well under a second. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libwebsockets-dev libsqlite3-dev libsodium-dev libssl-dev libjansson-dev libcurl4-openssl-dev
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev
  libcmocka-dev libopenblas-dev
  libjpeg62-turbo-dev libpng-dev libexif-dev
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pocketsphinx-testdata
  libespeak-ng-dev espeak-ng-data libpulse-dev libasound2-dev
  ffmpeg curl sqlite3 openssl procps python3 bsdutils
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm fetches the face models at setup (and the JavaScript reference for make bench). Debian's
# nodejs + npm, unless a node with its own npm is already installed.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -ne 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "bootstrap: done"
fi

# Model weights: fetched once, checked against the hashes committed in scripts/models.sha256.
"$(dirname "$0")/fetch_models.sh"
