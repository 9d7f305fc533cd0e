"""Calls skerryd's machine API with grpcio over mutual TLS, from stubs generated here.

Usage: grpcio_machine.py PROTO_DIR OUT_DIR TARGET CA READER_CERT READER_KEY ADMIN_CERT ADMIN_KEY
Generates the Python stubs from the .proto files into OUT_DIR with grpcio-tools, calls
a few methods as a reader and as an admin, and prints what came back as JSON on one line.
"""
import json
import os
import sys

import grpc
import grpc_tools
from grpc_tools import protoc

proto_dir, out_dir, target, ca, reader_cert, reader_key, admin_cert, admin_key = sys.argv[1:9]
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

from skerry.machine.v1 import machine_pb2 as pb, machine_pb2_grpc  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


def stub(cert, key):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )
    channel = grpc.secure_channel(target, credentials)
    return channel, machine_pb2_grpc.MachineServiceStub(channel)


def code_of(call):
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


SENSITIVE = pb.ResourceRef(
    namespace="config", type="ServiceConfigs.config.skerry.dev", id="web"
)
answer = {}
channel, reader = stub(reader_cert, reader_key)
with channel:
    version = reader.Version(pb.VersionRequest(), timeout=10)
    answer["board"] = version.board
    answer["api_version"] = version.api_version
    health = reader.Health(pb.HealthRequest(), timeout=10)
    answer["health"] = pb.HealthStatus.Name(health.overall)
    checks = reader.ResourceList(
        pb.ResourceListRequest(namespace="health", type="HealthChecks.health.skerry.dev"),
        timeout=10,
    )
    answer["checks"] = [r.ref.id for r in checks.resources]
    answer["check_yaml"] = checks.resources[0].spec_yaml
    answer["events"] = [
        e.kind for e in reader.Events(pb.EventsRequest(watch=False), timeout=10)
    ]
    answer["services"] = [s.id for s in reader.ServiceList(pb.ServiceListRequest(), timeout=10).services]
    answer["reader_upgrade"] = code_of(
        lambda: reader.Upgrade(pb.UpgradeRequest(release_version="2026.12.2"), timeout=10)
    )
    answer["reader_sensitive"] = code_of(
        lambda: reader.ResourceGet(pb.ResourceGetRequest(ref=SENSITIVE), timeout=10)
    )
    answer["bad_after_id"] = code_of(
        lambda: reader.Events(pb.EventsRequest(after_id="nope"), timeout=10)
    )
channel, admin = stub(admin_cert, admin_key)
with channel:
    secret = admin.ResourceGet(pb.ResourceGetRequest(ref=SENSITIVE), timeout=10)
    answer["admin_sensitive_yaml"] = secret.resource.spec_yaml
    answer["admin_upgrade"] = [
        pb.UpgradePhase.Name(p.phase)
        for p in admin.Upgrade(pb.UpgradeRequest(release_version="2026.12.2"), timeout=10)
    ]
print(json.dumps(answer))
