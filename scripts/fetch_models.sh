#!/usr/bin/env bash
# Fetches the model weights persona runs on, once, at setup (never at run time), and checks them.
#   face-api: the `model/` folder of the npm package @vladmandic/face-api (MIT): tfjs weight
#   manifests + shards of the tiny face detector, SSD MobileNet v1, 68-point landmarks (full and
#   tiny), the 128-D recognition network, age/gender and expressions; plus the package's demo
#   pictures (demo/sample1-6.jpg), which the tests and benchmarks use.
# The tarball npm hands us must match the integrity hash below (the registry's sha512); the
# files we keep are then listed with their sha256 in <dest>/SHA256SUMS and checked on every run.
# Destination: $PERSONA_MODELS (default: ./data/models) /face-api.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS="${PERSONA_MODELS:-$ROOT/data/models}"
DEST="$MODELS/face-api"
PKG="@vladmandic/face-api@1.7.15"
INTEGRITY="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="

if [ -f "$DEST/SHA256SUMS" ] && [ "$(cat "$DEST/PACKAGE" 2>/dev/null)" = "$PKG $INTEGRITY" ]; then
  if (cd "$DEST" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1); then
    exit 0
  fi
  echo "fetch_models: $DEST is damaged; fetching it again" >&2
fi

command -v npm >/dev/null || { echo "fetch_models: npm is missing (run scripts/bootstrap.sh)" >&2; exit 1; }
mkdir -p "$MODELS"
TMP="$(mktemp -d "$MODELS/.face-api.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "fetch_models: fetching $PKG with npm"
(cd "$TMP" && npm pack --silent "$PKG" >/dev/null)
TGZ="$(ls "$TMP"/*.tgz)"
GOT="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
if [ "$GOT" != "$INTEGRITY" ]; then
  echo "fetch_models: $PKG does not match its integrity hash (got $GOT)" >&2
  exit 1
fi
mkdir -p "$TMP/x" "$TMP/out"
tar -xzf "$TGZ" -C "$TMP/x"
cp "$TMP"/x/package/model/* "$TMP/out/"
cp "$TMP"/x/package/demo/sample[1-6].jpg "$TMP"/x/package/LICENSE "$TMP/out/"
(cd "$TMP/out" && sha256sum -- * > SHA256SUMS && echo "$PKG $INTEGRITY" > PACKAGE)
rm -rf "$DEST"
mv "$TMP/out" "$DEST"
echo "fetch_models: $DEST ready ($(ls "$DEST" | wc -l) files)"
