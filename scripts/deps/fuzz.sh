#!/usr/bin/env bash
# cargo-fuzz builds and runs the parsers' fuzz targets (libFuzzer, on the stable toolchain
# with RUSTC_BOOTSTRAP=1).
set -euo pipefail
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
