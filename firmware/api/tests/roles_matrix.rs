//! Every method of the machine API called with every role and with no role: the role
//! table alone decides who gets past the gate, and the table covers the generated
//! service exactly.

mod common;

use common::Served;
use prost::Message as _;
use skerry_api::{pb, required_role, Role, METHOD_ROLES};
use skerry_proto::machine::v1::machine_service_client::MachineServiceClient;
use tonic::transport::Channel;
use tonic::Code;

/// Every method path the generated service has, from the compiled descriptors.
fn generated_methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(skerry_proto::MACHINE_DESCRIPTOR_SET).unwrap();
    let mut paths = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package() == "skerry.machine.v1")
    {
        for service in &file.service {
            for method in &service.method {
                paths.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    paths
}

#[test]
fn the_role_table_lists_every_generated_method_exactly_once() {
    let generated = generated_methods();
    assert!(generated.len() >= 18, "{generated:?}");
    for path in &generated {
        let listed = METHOD_ROLES.iter().filter(|(p, _)| p == path).count();
        assert_eq!(listed, 1, "{path} must be in METHOD_ROLES exactly once");
    }
    for (path, _) in METHOD_ROLES {
        assert!(
            generated.contains(&path.to_string()),
            "{path} is not a generated method"
        );
    }
}

/// Calls the method at `path` with an empty request and returns the status code the
/// caller sees (streams: the status of the call, before any message).
async fn call(client: &mut MachineServiceClient<Channel>, path: &str) -> Code {
    let method = path.rsplit('/').next().unwrap();
    macro_rules! unary {
        ($f:ident, $req:expr) => {
            client.$f($req).await.err().map_or(Code::Ok, |s| s.code())
        };
    }
    match method {
        "Version" => unary!(version, pb::VersionRequest {}),
        "Health" => unary!(health, pb::HealthRequest {}),
        "ApplyConfiguration" => unary!(
            apply_configuration,
            pb::ApplyConfigurationRequest::default()
        ),
        "ConfirmConfiguration" => unary!(
            confirm_configuration,
            pb::ConfirmConfigurationRequest::default()
        ),
        "Upgrade" => unary!(upgrade, pb::UpgradeRequest::default()),
        "Rollback" => unary!(rollback, pb::RollbackRequest::default()),
        "Reboot" => unary!(reboot, pb::RebootRequest {}),
        "Shutdown" => unary!(shutdown, pb::ShutdownRequest {}),
        "ServiceList" => unary!(service_list, pb::ServiceListRequest {}),
        "ServiceStart" => unary!(service_start, pb::ServiceStartRequest::default()),
        "ServiceStop" => unary!(service_stop, pb::ServiceStopRequest::default()),
        "ServiceRestart" => unary!(service_restart, pb::ServiceRestartRequest::default()),
        "Logs" => unary!(logs, pb::LogsRequest::default()),
        "Events" => unary!(events, pb::EventsRequest::default()),
        "ResourceGet" => unary!(resource_get, pb::ResourceGetRequest::default()),
        "ResourceList" => unary!(resource_list, pb::ResourceListRequest::default()),
        "ResourceWatch" => unary!(resource_watch, pb::ResourceWatchRequest::default()),
        "Dependencies" => unary!(dependencies, pb::DependenciesRequest {}),
        other => panic!("the test does not know how to call {other}: add it here"),
    }
}

/// What a caller with `role` must see: the gate's refusal, or the method's own answer
/// (the test machine serves Version and Health; its other methods say they are not
/// there, so reaching them shows the call got past the gate).
fn expected(path: &str, role: Option<Role>) -> Code {
    let required = required_role(path).unwrap();
    match role {
        None => Code::Unauthenticated,
        Some(role) if !role.allows(required) => Code::PermissionDenied,
        Some(_) if path.ends_with("/Version") || path.ends_with("/Health") => Code::Ok,
        Some(_) => Code::Unimplemented,
    }
}

#[tokio::test]
async fn every_method_with_every_role_and_with_a_certificate_naming_no_role() {
    let served = Served::start().await;
    let mut callers: Vec<(Option<Role>, common::Pem)> = Role::ALL
        .into_iter()
        .map(|r| (Some(r), served.ca.client_for(r).unwrap()))
        .collect();
    callers.push((None, served.ca.client(&["acme", "system:masters"]).unwrap()));
    let mut seen = Vec::new();
    for (role, pem) in &callers {
        let mut client = skerry_api::connect(&served.endpoint, &served.client_tls(pem))
            .await
            .unwrap();
        for path in generated_methods() {
            let code = call(&mut client, &path).await;
            assert_eq!(code, expected(&path, *role), "{path} called as {role:?}");
            seen.push((path, *role, code));
        }
    }
    assert_eq!(seen.len(), 4 * generated_methods().len());
    served.stop().await;
}

#[tokio::test]
async fn a_reader_cannot_upgrade_and_is_told_which_role_it_needs() {
    let served = Served::start().await;
    let reader = served.ca.client_for(Role::Reader).unwrap();
    let mut client = skerry_api::connect(&served.endpoint, &served.client_tls(&reader))
        .await
        .unwrap();
    let status = client
        .upgrade(pb::UpgradeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("os:admin"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("os:reader"),
        "{}",
        status.message()
    );
    served.stop().await;
}
