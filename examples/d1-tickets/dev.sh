#!/usr/bin/env bash
# Builds the worker and serves it on http://127.0.0.1:8787 with a local D1
# (Cloudflare's workerd under miniflare), until Ctrl-C. Needs Node.js,
# `npm ci` in crates/factos-test-d1/js, worker-build and wasm-bindgen-cli
# (see the README's Cloudflare D1 section).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
js="$here/../../crates/factos-test-d1/js"
cd "$here"
# The D1 tests build their worker in the same target directory: the
# dependencies compile once for both.
WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-wasm-bindgen}" ESBUILD_BIN="$js/node_modules/.bin/esbuild" \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/../../target/d1-worker}" \
    worker-build --release --no-opt
echo "serving on http://127.0.0.1:${PORT:-8787}"
exec node "$js/harness.mjs" "$here/build" DB "${PORT:-8787}" < /dev/stdin
