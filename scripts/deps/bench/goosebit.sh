#!/usr/bin/env bash
# goosebit (a hawkBit-DDI server from PyPI) for the DDI poll rows of the check-in load
# bench (update-server/server/benches/checkin_load/goosebit.rs), pinned, in its own venv
# so Debian's externally-managed Python is left alone. Idempotent.
set -euo pipefail
venv=/opt/skerry/goosebit-venv
if "$venv/bin/python3" -c 'import goosebit, aerich, uvicorn' 2>/dev/null; then
    exit 0
fi
mkdir -p /opt/skerry
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'goosebit==0.2.12'
"$venv/bin/python3" -c 'import goosebit, aerich, uvicorn'
