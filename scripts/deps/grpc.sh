#!/usr/bin/env bash
# grpcio and grpcio-tools for the Python client interop test of the machine API
# (firmware/api/tests/python_grpcio.rs), in their own venv so Debian's
# externally-managed Python is left alone. Idempotent.
set -euo pipefail
venv=/opt/skerry/grpc-venv
if "$venv/bin/python3" -c 'import grpc, grpc_tools.protoc' 2>/dev/null; then
    exit 0
fi
mkdir -p /opt/skerry
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'grpcio>=1.60,<2' 'grpcio-tools>=1.60,<2'
"$venv/bin/python3" -c 'import grpc, grpc_tools.protoc'
