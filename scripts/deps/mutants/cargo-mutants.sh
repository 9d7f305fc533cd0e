#!/usr/bin/env bash
# cargo-mutants for the boot state's mutation score (scripts/mutants). Not part of the
# test group: scripts/test never runs it. Idempotent.
set -euo pipefail
command -v cargo-mutants >/dev/null 2>&1 || cargo install --locked cargo-mutants
