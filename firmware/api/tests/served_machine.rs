//! What the edge hands a served machine: Version's answer from `VersionInfo` over mutual
//! TLS, and the caller's role in every request that passed the gate.

mod common;

use common::Served;
use skerry_api::{pb, Role};
use tonic::Code;

#[tokio::test]
async fn version_reports_the_daemon_release_board_and_slot() {
    let served = Served::start().await;
    let reader = served.ca.client_for(Role::Reader).unwrap();
    let mut client = skerry_api::connect(&served.endpoint, &served.client_tls(&reader))
        .await
        .unwrap();
    let v = client
        .version(pb::VersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.daemon_version, "0.1.0");
    assert_eq!(v.api_version, "skerry.machine.v1");
    assert_eq!(v.release_version, "2026.12.1");
    assert_eq!(v.board, "rpi4");
    assert_eq!(v.booted_slot, "A");
    let h = client
        .health(pb::HealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h, common::sample_health());
    served.stop().await;
}

#[tokio::test]
async fn the_method_sees_the_role_the_gate_read_from_the_certificate() {
    let served = Served::start().await;
    for role in [Role::Operator, Role::Admin] {
        let pem = served.ca.client_for(role).unwrap();
        let mut client = skerry_api::connect(&served.endpoint, &served.client_tls(&pem))
            .await
            .unwrap();
        let status = client.reboot(pb::RebootRequest {}).await.unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(
            status.message().contains("MachineService/Reboot"),
            "{}",
            status.message()
        );
        assert!(
            status
                .message()
                .contains(&format!("(caller: {})", role.organization())),
            "{}",
            status.message()
        );
    }
    served.stop().await;
}
