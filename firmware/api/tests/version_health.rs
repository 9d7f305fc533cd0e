//! Version and Health answer from what the daemon handed over.

mod common;

use common::Served;
use skerry_api::{pb, Role};

#[tokio::test]
async fn version_reports_the_daemon_release_board_and_slot() {
    let served = Served::start().await;
    let reader = served.ca.client_for(Role::Reader);
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
    served.stop().await;
}

#[tokio::test]
async fn health_lists_every_check_and_only_critical_ones_decide() {
    let served = Served::start().await;
    let reader = served.ca.client_for(Role::Reader);
    let mut client = skerry_api::connect(&served.endpoint, &served.client_tls(&reader))
        .await
        .unwrap();
    let h = client
        .health(pb::HealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.overall(), pb::HealthStatus::Healthy);
    assert_eq!(h.checks.len(), 2);
    assert_eq!(h.checks[0].name, "api-port");
    assert_eq!(h.checks[0].last_run.unwrap().seconds, 1_700_000_000);
    assert_eq!(h.checks[1].status(), pb::HealthStatus::Unhealthy);
    assert_eq!(h.checks[1].message, "var is 97% full");
    assert_eq!(h.checks[1].consecutive_failures, 3);
    served.stop().await;
}
