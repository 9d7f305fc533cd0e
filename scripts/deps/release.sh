#!/usr/bin/env bash
# python-tuf's ngclient for the TUF interop test (firmware/skerryctl/tests/release_tuf_interop.rs),
# in its own venv so Debian's externally-managed Python is left alone. Idempotent.
set -euo pipefail
venv=/opt/skerry/tuf-venv
if "$venv/bin/python3" -c 'import tuf.ngclient' 2>/dev/null; then
    exit 0
fi
mkdir -p /opt/skerry
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'tuf>=6,<8'
"$venv/bin/python3" -c 'import tuf.ngclient'
