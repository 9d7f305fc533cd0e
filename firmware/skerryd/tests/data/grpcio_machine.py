"""Calls skerryd's machine API with grpcio over mutual TLS, from stubs generated here.

Usage: grpcio_machine.py PROTO_DIR OUT_DIR TARGET CA reader CERT KEY admin CERT KEY
(see skerry_grpcio). Calls a few methods as a reader and as an admin, and prints what
came back as JSON on one line.
"""
import json

from skerry_grpcio import code_of, connect, pb

SENSITIVE = pb.ResourceRef(
    namespace="config", type="ServiceConfigs.config.skerry.dev", id="web"
)
answer = {}
channel, reader = connect("reader")
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
channel, admin = connect("admin")
with channel:
    secret = admin.ResourceGet(pb.ResourceGetRequest(ref=SENSITIVE), timeout=10)
    answer["admin_sensitive_yaml"] = secret.resource.spec_yaml
    answer["admin_upgrade"] = [
        pb.UpgradePhase.Name(p.phase)
        for p in admin.Upgrade(pb.UpgradeRequest(release_version="2026.12.2"), timeout=10)
    ]
print(json.dumps(answer))
