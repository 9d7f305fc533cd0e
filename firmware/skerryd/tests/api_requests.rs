//! What skerryd's Machine checks before handing a request to a subsystem: ids present
//! and bounded, sizes under their named limits, a chosen apply mode. A refused request
//! is INVALID_ARGUMENT naming the field, and never reaches the subsystem.

mod common;

use common::Served;
use skerry_api::{pb, Role};
use skerryd::api::{
    MAX_REASON_BYTES, MAX_RELEASE_VERSION_BYTES, MAX_SERVICE_ID_BYTES, MAX_TAIL_LINES,
};
use tonic::{Code, Status};

fn assert_refused(served: &Served, answer: Result<(), Status>, field: &str) {
    let status = answer.expect_err(field);
    assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
    assert!(
        status.message().contains(field),
        "{field}: {}",
        status.message()
    );
    assert!(
        served.calls.all().is_empty(),
        "{field}: the subsystem was called: {:?}",
        served.calls.all()
    );
}

#[tokio::test]
async fn service_ids_must_be_present_and_bounded() {
    let served = Served::start().await;
    let mut client = served.client(Role::Operator).await;
    let long = "s".repeat(MAX_SERVICE_ID_BYTES + 1);
    for id in ["", long.as_str(), "web\nweb"] {
        let start = client
            .service_start(pb::ServiceStartRequest { id: id.into() })
            .await
            .map(drop);
        assert_refused(&served, start, "id");
        let stop = client
            .service_stop(pb::ServiceStopRequest { id: id.into() })
            .await
            .map(drop);
        assert_refused(&served, stop, "id");
        let restart = client
            .service_restart(pb::ServiceRestartRequest { id: id.into() })
            .await
            .map(drop);
        assert_refused(&served, restart, "id");
        let logs = client
            .logs(pb::LogsRequest {
                service_id: id.into(),
                follow: false,
                tail_lines: 0,
            })
            .await
            .map(drop);
        assert_refused(&served, logs, "service_id");
    }
    // The longest allowed id goes through.
    let longest = "s".repeat(MAX_SERVICE_ID_BYTES);
    client
        .service_start(pb::ServiceStartRequest {
            id: longest.clone(),
        })
        .await
        .unwrap();
    assert_eq!(served.calls.all(), [format!("service-start {longest}")]);
    served.stop().await;
}

#[tokio::test]
async fn tail_lines_above_the_limit_are_refused_naming_it() {
    let served = Served::start().await;
    let mut client = served.client(Role::Reader).await;
    let logs = |tail_lines| pb::LogsRequest {
        service_id: "web".into(),
        follow: true,
        tail_lines,
    };
    let status = client.logs(logs(MAX_TAIL_LINES + 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains(&MAX_TAIL_LINES.to_string()),
        "{}",
        status.message()
    );
    assert!(served.calls.all().is_empty());
    client.logs(logs(MAX_TAIL_LINES)).await.unwrap();
    assert_eq!(
        served.calls.all(),
        [format!("logs web tail={MAX_TAIL_LINES} follow=true")]
    );
    served.stop().await;
}

#[tokio::test]
async fn apply_needs_a_mode_and_try_timeout_only_with_try() {
    let served = Served::start().await;
    let mut client = served.client(Role::Admin).await;
    let apply =
        |mode: i32, try_timeout: Option<prost_types::Duration>| pb::ApplyConfigurationRequest {
            configuration: b"kind: MachineConfig\n".to_vec(),
            mode,
            dry_run: true,
            try_timeout,
        };
    let seconds = |s| {
        Some(prost_types::Duration {
            seconds: s,
            nanos: 0,
        })
    };
    for (request, field) in [
        (apply(pb::ApplyMode::Unspecified.into(), None), "mode"),
        (apply(99, None), "mode 99"),
        (
            apply(pb::ApplyMode::NoReboot.into(), seconds(60)),
            "try_timeout",
        ),
        (apply(pb::ApplyMode::Try.into(), seconds(-1)), "try_timeout"),
        (apply(pb::ApplyMode::Try.into(), seconds(0)), "try_timeout"),
    ] {
        let answer = client.apply_configuration(request).await.map(drop);
        assert_refused(&served, answer, field);
    }
    client
        .apply_configuration(apply(pb::ApplyMode::Try.into(), seconds(60)))
        .await
        .unwrap();
    assert_eq!(
        served.calls.all(),
        ["apply APPLY_MODE_TRY dry_run=true bytes=20"]
    );
    served.calls.clear();
    let confirm = client
        .confirm_configuration(pb::ConfirmConfigurationRequest { generation: 0 })
        .await
        .map(drop);
    assert_refused(&served, confirm, "generation");
    served.stop().await;
}

#[tokio::test]
async fn upgrade_and_rollback_texts_are_bounded() {
    let served = Served::start().await;
    let mut client = served.client(Role::Admin).await;
    for version in [
        "v".repeat(MAX_RELEASE_VERSION_BYTES + 1),
        "2026.12\n2".into(),
    ] {
        let upgrade = client
            .upgrade(pb::UpgradeRequest {
                release_version: version,
                force: false,
            })
            .await
            .map(drop);
        assert_refused(&served, upgrade, "release_version");
    }
    let rollback = client
        .rollback(pb::RollbackRequest {
            reason: "r".repeat(MAX_REASON_BYTES + 1),
        })
        .await
        .map(drop);
    assert_refused(&served, rollback, "reason");
    // An empty version asks for the newest release; a reason may span lines.
    client
        .upgrade(pb::UpgradeRequest {
            release_version: String::new(),
            force: true,
        })
        .await
        .unwrap();
    client
        .rollback(pb::RollbackRequest {
            reason: "probation\nfailed".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        served.calls.all(),
        ["upgrade  force=true", "rollback probation\nfailed"]
    );
    served.stop().await;
}
