"""The shared part of the grpcio test clients: stubs and mutual-TLS channels.

A client script runs as: SCRIPT PROTO_DIR OUT_DIR TARGET CA [NAME CERT KEY]...
Importing this module generates the Python stubs from the .proto files into OUT_DIR
with grpcio-tools and makes them importable; `pb` is the generated message module,
`connect(NAME)` opens a channel with that identity's certificate, `code_of(call)` names
the status a call ends with.
"""
import os
import sys

import grpc
import grpc_tools
from grpc_tools import protoc

proto_dir, out_dir, target, ca = sys.argv[1:5]
_rest = sys.argv[5:]
if len(_rest) % 3 != 0:
    sys.exit(f"identities come as NAME CERT KEY, got {_rest}")
identities = {
    _rest[i]: (_rest[i + 1], _rest[i + 2]) for i in range(0, len(_rest), 3)
}

_well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
_status = protoc.main([
    "grpc_tools.protoc",
    f"-I{proto_dir}",
    f"-I{_well_known}",
    f"--python_out={out_dir}",
    f"--grpc_python_out={out_dir}",
    "skerry/machine/v1/machine.proto",
])
if _status != 0:
    sys.exit(f"grpc_tools.protoc failed with {_status}")
sys.path.insert(0, out_dir)

from skerry.machine.v1 import machine_pb2 as pb, machine_pb2_grpc  # noqa: E402,F401


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def connect(name):
    """A channel to TARGET as identity NAME, and the MachineService stub on it."""
    cert, key = identities[name]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(ca), private_key=_read(key), certificate_chain=_read(cert)
    )
    channel = grpc.secure_channel(target, credentials)
    return channel, machine_pb2_grpc.MachineServiceStub(channel)


def code_of(call):
    """The status name `call` ends with ("OK" when it succeeds), streams read out."""
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name
