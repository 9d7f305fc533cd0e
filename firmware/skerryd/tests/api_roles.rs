//! Every method of the generated service, called on skerryd's Machine with every role,
//! with a certificate naming no role, and with no certificate at all: the gate's
//! answer is what the role table says, and an allowed call reaches the subsystem (the
//! fake records it) or the state (its answer carries what the state holds), while a
//! refused one reaches nothing.

mod common;

use common::Served;
use futures_util::StreamExt as _;
use skerry_api::testing::error_chain;
use skerry_api::{pb, required_role, ClientTls, Role, METHOD_ROLES};
use skerry_runtime::ResourceSpec as _;
use skerryd_core::resources::HealthCheckStatus;
use tonic::transport::Channel;
use tonic::{Code, Status};

type Client = pb::machine_service_client::MachineServiceClient<Channel>;

/// Every method path of `MachineService`, read from the `.proto` file the code is
/// generated from.
fn generated_methods() -> Vec<String> {
    let path = std::path::Path::new(skerry_proto::PROTO_DIR).join(skerry_proto::MACHINE_PROTOS[0]);
    let text = std::fs::read_to_string(&path).unwrap();
    let methods: Vec<String> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("rpc "))
        .map(|rest| rest.split('(').next().unwrap().trim().to_owned())
        .map(|name| format!("/skerry.machine.v1.MachineService/{name}"))
        .collect();
    assert!(methods.len() >= 18, "{methods:?}");
    methods
}

async fn collect<T>(
    stream: Result<tonic::Response<tonic::Streaming<T>>, Status>,
) -> Result<Vec<T>, Status> {
    let mut stream = stream?.into_inner();
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item?);
    }
    Ok(items)
}

const CONFIG: &[u8] = b"apiVersion: v1alpha1\nkind: MachineConfig\nhostname: edge-2\n";

/// Calls `method` with a valid request; returns a line describing what came back.
async fn call(client: &mut Client, served: &Served, method: &str) -> Result<String, Status> {
    Ok(match method {
        "Version" => {
            client
                .version(pb::VersionRequest {})
                .await?
                .into_inner()
                .board
        }
        "Health" => format!(
            "{:?}",
            client.health(pb::HealthRequest {}).await?.into_inner()
        ),
        "ApplyConfiguration" => {
            let answer = client
                .apply_configuration(pb::ApplyConfigurationRequest {
                    configuration: CONFIG.to_vec(),
                    mode: pb::ApplyMode::NoReboot.into(),
                    dry_run: false,
                    try_timeout: None,
                })
                .await?
                .into_inner();
            format!("generation={}", answer.generation)
        }
        "ConfirmConfiguration" => {
            client
                .confirm_configuration(pb::ConfirmConfigurationRequest { generation: 7 })
                .await?;
            "confirmed".into()
        }
        "Upgrade" => {
            let progress = collect(
                client
                    .upgrade(pb::UpgradeRequest {
                        release_version: "2026.12.2".into(),
                        force: false,
                    })
                    .await,
            )
            .await?;
            progress
                .iter()
                .map(|p| p.phase().as_str_name())
                .collect::<Vec<_>>()
                .join(",")
        }
        "Rollback" => {
            client
                .rollback(pb::RollbackRequest {
                    reason: "operator said so".into(),
                })
                .await?
                .into_inner()
                .target_slot
        }
        "Reboot" => {
            client.reboot(pb::RebootRequest {}).await?;
            "rebooting".into()
        }
        "Shutdown" => {
            client.shutdown(pb::ShutdownRequest {}).await?;
            "shutting down".into()
        }
        "ServiceList" => format!(
            "{:?}",
            client
                .service_list(pb::ServiceListRequest {})
                .await?
                .into_inner()
        ),
        "ServiceStart" => format!(
            "{:?}",
            client
                .service_start(pb::ServiceStartRequest { id: "web".into() })
                .await?
                .into_inner()
        ),
        "ServiceStop" => format!(
            "{:?}",
            client
                .service_stop(pb::ServiceStopRequest { id: "web".into() })
                .await?
                .into_inner()
        ),
        "ServiceRestart" => format!(
            "{:?}",
            client
                .service_restart(pb::ServiceRestartRequest { id: "web".into() })
                .await?
                .into_inner()
        ),
        "Logs" => {
            let lines = collect(
                client
                    .logs(pb::LogsRequest {
                        service_id: "web".into(),
                        follow: false,
                        tail_lines: 10,
                    })
                    .await,
            )
            .await?;
            lines
                .iter()
                .map(|l| String::from_utf8_lossy(&l.line).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        }
        "Events" => {
            let events = collect(
                client
                    .events(pb::EventsRequest {
                        after_id: String::new(),
                        watch: false,
                    })
                    .await,
            )
            .await?;
            events
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>()
                .join(",")
        }
        "ResourceGet" => {
            let answer = client
                .resource_get(pb::ResourceGetRequest {
                    r#ref: Some(pb::ResourceRef {
                        namespace: HealthCheckStatus::NAMESPACE.into(),
                        r#type: HealthCheckStatus::TYPE.into(),
                        id: "web/http".into(),
                    }),
                })
                .await?
                .into_inner();
            format!("{:?}", answer.resource.unwrap())
        }
        "ResourceList" => {
            let answer = client
                .resource_list(pb::ResourceListRequest {
                    namespace: HealthCheckStatus::NAMESPACE.into(),
                    r#type: HealthCheckStatus::TYPE.into(),
                })
                .await?
                .into_inner();
            format!("{:?}", answer.resources)
        }
        "ResourceWatch" => {
            let mut stream = client
                .resource_watch(pb::ResourceWatchRequest {
                    namespace: HealthCheckStatus::NAMESPACE.into(),
                    r#type: HealthCheckStatus::TYPE.into(),
                    id: String::new(),
                    bootstrap: true,
                })
                .await?
                .into_inner();
            let mut seen = Vec::new();
            for _ in 0..2 {
                let event = stream.next().await.unwrap()?;
                let kind = event.kind().as_str_name();
                let id = event.resource.and_then(|r| r.r#ref).map(|r| r.id);
                seen.push(format!("{kind} {}", id.unwrap_or_default()));
            }
            seen.join(",")
        }
        "Dependencies" => format!(
            "{:?}",
            client
                .dependencies(pb::DependenciesRequest {})
                .await?
                .into_inner()
        ),
        other => panic!("the test does not know how to call {other}: add it here ({served:p})"),
    })
}

/// What an allowed call must leave: the line the fake recorded (none for methods that
/// read the state or the log), and a piece of the answer.
fn effect(served: &Served, method: &str) -> (Option<String>, String) {
    let fake = |line: &str| Some(line.to_owned());
    match method {
        "Version" => (None, "rpi4".into()),
        "Health" => (fake("health"), "connection refused".into()),
        "ApplyConfiguration" => (
            fake(&format!(
                "apply APPLY_MODE_NO_REBOOT dry_run=false bytes={}",
                CONFIG.len()
            )),
            "generation=7".into(),
        ),
        "ConfirmConfiguration" => (fake("confirm 7"), "confirmed".into()),
        "Upgrade" => (
            fake("upgrade 2026.12.2 force=false"),
            "UPGRADE_PHASE_DOWNLOADING,UPGRADE_PHASE_TRIAL_READY".into(),
        ),
        "Rollback" => (fake("rollback operator said so"), "A".into()),
        "Reboot" => (fake("reboot"), "rebooting".into()),
        "Shutdown" => (fake("shutdown"), "shutting down".into()),
        "ServiceList" => (fake("service-list"), "pid: 4242".into()),
        "ServiceStart" => (fake("service-start web"), "pid: 4242".into()),
        "ServiceStop" => (fake("service-stop web"), "pid: 4242".into()),
        "ServiceRestart" => (fake("service-restart web"), "pid: 4242".into()),
        "Logs" => (
            fake("logs web tail=10 follow=false"),
            "listening on :8080".into(),
        ),
        "Events" => (None, served.first_events.join(",")),
        "ResourceGet" | "ResourceList" => (None, "id: \"web/http\"".into()),
        "ResourceWatch" => (
            None,
            "RESOURCE_EVENT_KIND_CREATED web/http,RESOURCE_EVENT_KIND_BOOTSTRAPPED ".into(),
        ),
        "Dependencies" => (None, "name: \"widget-maker\"".into()),
        other => panic!("no expected effect for {other}"),
    }
}

#[test]
fn the_role_table_covers_the_generated_service_exactly() {
    let mut generated = generated_methods();
    generated.sort();
    let mut table: Vec<String> = METHOD_ROLES.iter().map(|(p, _)| p.to_string()).collect();
    table.sort();
    assert_eq!(generated, table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_with_every_role_reaches_the_machine_only_when_the_table_allows() {
    let served = Served::start().await;
    let mut checked = 0;
    let callers: Vec<(Option<Role>, common::Pem)> = Role::ALL
        .into_iter()
        .map(|role| (Some(role), served.ca.client_for(role).unwrap()))
        .chain([(None, served.ca.client(&["system:masters"]).unwrap())])
        .collect();
    for (role, pem) in &callers {
        let mut client = skerry_api::connect(&served.endpoint, &served.client_tls(pem))
            .await
            .unwrap();
        for path in generated_methods() {
            let method = path.rsplit('/').next().unwrap();
            let required = required_role(&path).unwrap();
            served.calls.clear();
            let answer = call(&mut client, &served, method).await;
            let reached = served.calls.all();
            match role {
                None => {
                    let status = answer.expect_err(&path);
                    assert_eq!(status.code(), Code::Unauthenticated, "{path}: {status:?}");
                    assert!(
                        status.message().contains("names no role"),
                        "{path}: {status:?}"
                    );
                    assert!(reached.is_empty(), "{path} reached {reached:?}");
                }
                Some(role) if !role.allows(required) => {
                    let status = answer.expect_err(&path);
                    assert_eq!(status.code(), Code::PermissionDenied, "{path} as {role}");
                    assert!(
                        status.message().contains(required.organization()),
                        "{path}: {status:?}"
                    );
                    assert!(reached.is_empty(), "{path} as {role} reached {reached:?}");
                }
                Some(role) => {
                    let answer = answer.unwrap_or_else(|s| panic!("{path} as {role}: {s:?}"));
                    let (recorded, shown) = effect(&served, method);
                    assert_eq!(
                        reached,
                        recorded.into_iter().collect::<Vec<_>>(),
                        "{path} as {role}"
                    );
                    assert!(answer.contains(&shown), "{path} as {role}: {answer}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * generated_methods().len());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_certificate_no_method_runs() {
    let served = Served::start().await;
    let anonymous = ClientTls::anonymous(&served.ca.cert_pem, "localhost");
    for path in generated_methods() {
        let method = path.rsplit('/').next().unwrap();
        let answer = match skerry_api::connect(&served.endpoint, &anonymous).await {
            Ok(mut client) => call(&mut client, &served, method).await,
            Err(e) => Err(Status::unavailable(error_chain(&e))),
        };
        // The handshake fails: the client sees the server's alert, or (when the alert
        // loses the race with its request) the connection closing or a broken pipe; in
        // every case a transport error of the client's, never a status the gate or a
        // method sent (those carry no source).
        let status = answer.expect_err(&path);
        let chain = error_chain(&status);
        assert!(
            matches!(
                status.code(),
                Code::Unknown | Code::Cancelled | Code::Unavailable
            ),
            "{path}: {chain}"
        );
        assert!(
            std::error::Error::source(&status).is_some() && chain.contains("transport error"),
            "{path}: the failure must come from the transport, not from the server: {chain}"
        );
        assert!(
            served.calls.all().is_empty(),
            "{path} reached {:?}",
            served.calls.all()
        );
    }
    served.stop().await;
}
