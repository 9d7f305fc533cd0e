"""Calls skerry.machine.v1.MachineService/Version with grpcio over mutual TLS.

Usage: grpcio_version.py PROTO_DIR OUT_DIR TARGET CA reader CERT KEY (see skerry_grpcio)
Prints the VersionResponse's fields and the status of the reader's Upgrade as JSON on
one line.
"""
import json

from skerry_grpcio import code_of, connect, pb

channel, stub = connect("reader")
with channel:
    answer = stub.Version(pb.VersionRequest(), timeout=10)
    upgrade_code = code_of(lambda: stub.Upgrade(pb.UpgradeRequest(), timeout=10))
print(json.dumps({
    "daemon_version": answer.daemon_version,
    "api_version": answer.api_version,
    "board": answer.board,
    "booted_slot": answer.booted_slot,
    "upgrade": upgrade_code,
}))
