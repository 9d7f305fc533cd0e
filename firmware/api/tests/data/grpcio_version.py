"""Calls skerry.machine.v1.MachineService/Version with grpcio over mutual TLS.

Usage: grpcio_version.py PROTO_DIR OUT_DIR TARGET CA CERT KEY
Generates the Python stubs from the .proto files into OUT_DIR with grpcio-tools,
then prints the VersionResponse's fields as JSON on one line.
"""
import json
import os
import sys

import grpc
import grpc_tools
from grpc_tools import protoc

proto_dir, out_dir, target, ca, cert, key = sys.argv[1:7]
well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
status = protoc.main([
    "grpc_tools.protoc",
    f"-I{proto_dir}",
    f"-I{well_known}",
    f"--python_out={out_dir}",
    f"--grpc_python_out={out_dir}",
    "skerry/machine/v1/machine.proto",
])
if status != 0:
    sys.exit(f"grpc_tools.protoc failed with {status}")
sys.path.insert(0, out_dir)

from skerry.machine.v1 import machine_pb2, machine_pb2_grpc  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


credentials = grpc.ssl_channel_credentials(
    root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
)
with grpc.secure_channel(target, credentials) as channel:
    stub = machine_pb2_grpc.MachineServiceStub(channel)
    answer = stub.Version(machine_pb2.VersionRequest(), timeout=10)
    upgrade_code = None
    try:
        for _ in stub.Upgrade(machine_pb2.UpgradeRequest(), timeout=10):
            pass
    except grpc.RpcError as e:
        upgrade_code = e.code().name
print(json.dumps({
    "daemon_version": answer.daemon_version,
    "api_version": answer.api_version,
    "board": answer.board,
    "booted_slot": answer.booted_slot,
    "upgrade": upgrade_code,
}))
