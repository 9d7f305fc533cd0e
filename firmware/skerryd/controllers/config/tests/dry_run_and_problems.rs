//! A dry run changes nothing and says what would change; an invalid config is refused
//! with every problem, each with its document, path and line, in the status details.

mod common;

use common::{config, config_with_identity, fresh, store_bytes};
use prost::Message as _;
use skerry_api::pb::{self, ApplyMode};
use tonic::Code;

/// Three problems on three lines: a bad hostname, a service depending on a service
/// that does not exist, and a duplicate link name.
const BROKEN: &str = "\
apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: -bad-
---
apiVersion: skerry.dev/v1alpha1
kind: NetworkConfig
links:
  - name: eth0
    dhcp: true
  - name: eth0
    dhcp: true
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: web
command: [/bin/web]
dependsOn: [ghost]
";

#[tokio::test]
async fn a_dry_run_gives_the_diff_and_writes_nothing() {
    let (dir, daemon) = fresh().await;
    daemon
        .applied("pump-7", &["web"], ApplyMode::NoReboot)
        .await;
    let before = store_bytes(dir.path());
    let events_before = daemon.event_kinds();
    for mode in [
        ApplyMode::NoReboot,
        ApplyMode::Reboot,
        ApplyMode::Staged,
        ApplyMode::Try,
    ] {
        let answer = daemon
            .dry_run(&config("pump-8", &["web", "db"]), mode)
            .await;
        assert!(answer.unchanged, "{mode:?}");
        assert_eq!(answer.generation, 0);
        assert!(!answer.reboot_pending);
        assert!(answer.problems.is_empty(), "{:?}", answer.problems);
        assert!(answer.diff.contains("-hostname: pump-7"), "{}", answer.diff);
        assert!(answer.diff.contains("+hostname: pump-8"), "{}", answer.diff);
        assert!(answer.diff.contains("+name: db"), "{}", answer.diff);
    }
    assert_eq!(store_bytes(dir.path()), before);
    assert_eq!(daemon.event_kinds(), events_before);
    assert_eq!(daemon.hostname().as_deref(), Some("pump-7"));
    assert_eq!(daemon.generation(), 1);
    assert!(daemon.power.requests().is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn a_dry_run_reports_problems_and_what_the_mode_cannot_carry() {
    let (dir, daemon) = fresh().await;
    daemon.applied("pump-7", &[], ApplyMode::NoReboot).await;
    let before = store_bytes(dir.path());
    let answer = daemon.dry_run(BROKEN, ApplyMode::NoReboot).await;
    assert!(answer.problems.len() >= 3, "{:?}", answer.problems);
    assert!(
        answer.problems.iter().all(|p| p.line > 0),
        "{:?}",
        answer.problems
    );
    // It decoded, so the diff is there too.
    assert!(
        answer.diff.contains("+hostname: \"-bad-\""),
        "{}",
        answer.diff
    );

    let answer = daemon
        .dry_run(&config_with_identity("pump-7", "m-9"), ApplyMode::NoReboot)
        .await;
    assert_eq!(answer.problems.len(), 1, "{:?}", answer.problems);
    assert_eq!(answer.problems[0].path, "identity");
    assert!(answer.problems[0].message.contains("reboot"));
    let answer = daemon
        .dry_run(&config_with_identity("pump-7", "m-9"), ApplyMode::Reboot)
        .await;
    assert!(answer.problems.is_empty());
    assert_eq!(store_bytes(dir.path()), before);
    daemon.stop().await;
}

#[tokio::test]
async fn an_invalid_config_lists_every_problem_with_its_line_in_the_details() {
    let (dir, daemon) = fresh().await;
    let before = store_bytes(dir.path());
    let status = daemon.apply(BROKEN, ApplyMode::NoReboot).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let problems = pb::ConfigurationProblems::decode(status.details())
        .expect("the details are ConfigurationProblems")
        .problems;
    assert!(problems.len() >= 3, "{problems:?}");
    let find = |document: &str| {
        problems
            .iter()
            .find(|p| p.document == document)
            .unwrap_or_else(|| panic!("no problem in {document}: {problems:?}"))
    };
    assert_eq!(find("MachineConfig").line, 3);
    assert_eq!(find("MachineConfig").path, "hostname");
    let network = find("NetworkConfig");
    assert!(network.path.starts_with("links[1]"), "{network:?}");
    assert_eq!(network.line, 10);
    let web = find("ServiceConfig/web");
    assert_eq!(web.line, 17);
    // The message lists them all too, for people.
    for p in &problems {
        assert!(
            status.message().contains(&p.message),
            "{}",
            status.message()
        );
    }
    assert_eq!(store_bytes(dir.path()), before);
    assert_eq!(daemon.generation(), 0);
    daemon.stop().await;
}

#[tokio::test]
async fn an_unknown_key_is_refused_naming_document_key_and_line() {
    let (_dir, daemon) = fresh().await;
    let text = "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\nhostnme: b\n";
    let status = daemon.apply(text, ApplyMode::NoReboot).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let problems = pb::ConfigurationProblems::decode(status.details())
        .unwrap()
        .problems;
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (
            problems[0].document.as_str(),
            problems[0].path.as_str(),
            problems[0].line
        ),
        ("MachineConfig", "hostnme", 4)
    );
    daemon.stop().await;
}
