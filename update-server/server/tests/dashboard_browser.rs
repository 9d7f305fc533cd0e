//! The dashboard in a real headless Chromium (Debian's `chromium`, scripts/deps/dashboard.apt):
//! devices checked in over gRPC, a rollout paused by a failure; the page, given the token
//! in the URL fragment, shows the fleet overview, the rollout with its pause reason and
//! per-wave counts, the device list and one device's timeline. The rendered DOM is read
//! with `--dump-dom`; a screenshot of each page is kept in target/dashboard-screenshots/.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::fleet_service_client::FleetServiceClient;
use skerry_release::Expiries;
use support::*;

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("chromium is not installed: install Debian's `chromium` (scripts/install-deps dashboard, list scripts/deps/dashboard.apt)");
}

/// Runs headless Chromium on `url` with `extra` (e.g. --dump-dom) and returns stdout.
fn browse(profile: &std::path::Path, url: &str, extra: &str) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1200,900",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(extra)
        .arg(url)
        .output()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn request(device: &str, reports: Vec<pb::UpgradeReport>) -> pb::CheckInRequest {
    pb::CheckInRequest {
        device_id: device.into(),
        board: "pi".into(),
        version: "1.0.0".into(),
        channel: "stable".into(),
        labels: HashMap::new(),
        slots: vec![],
        health: Some(pb::Health {
            state: pb::HealthState::Healthy as i32,
            failing_checks: vec![],
        }),
        reports,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_fleet_the_paused_rollout_and_a_timeline_in_chromium() {
    chromium();
    let s = TestServer::start(
        |srv, keys| {
            publish(
                srv,
                keys,
                &[("1.0.0", "stable"), ("2.0.0", "stable")],
                &Expiries::default(),
            )
        },
        |_| {},
    )
    .await;
    let token = std::fs::read_to_string(s.srv().join("keys/operator.token"))
        .unwrap()
        .trim()
        .to_string();
    skerry_server::admin::create_rollout(
        &s.db(),
        &skerry_server::admin::NewRollout {
            id: "v2".into(),
            board: "pi".into(),
            version: "2.0.0".into(),
            channel: "stable".into(),
            waves: "0:100%".into(),
            max_bad: "0%".into(),
            min_sample: 1,
            force: false,
        },
        skerry_rollout::UnixTime(T0),
    )
    .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = FleetServiceClient::new(channel);
    for i in 0..3 {
        c.check_in(request(&format!("quay-{i}"), vec![]))
            .await
            .unwrap();
    }
    let failed = pb::UpgradeReport {
        sequence: 1,
        target_version: "2.0.0".into(),
        step: pb::UpgradeStep::Failed as i32,
        reason: "probe app failed".into(),
        at: None,
    };
    c.check_in(request("quay-1", vec![failed])).await.unwrap();

    let shots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let base = format!("http://{}/dashboard/#token={token}", s.addr);
    let pages = [
        ("overview", vec!["3 devices", "1.0.0", "healthy"]),
        (
            "rollouts",
            vec![
                "v2: pi 2.0.0 (stable)",
                "paused",
                "paused automatically: 1 of 1 devices in wave 1 failed",
            ],
        ),
        ("devices", vec!["quay-0", "quay-2"]),
        (
            "device/quay-1",
            vec!["Device quay-1", "failed", "probe app failed", "2.0.0"],
        ),
    ];
    let profile = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (page, expected) in pages {
        let url = format!("{base}&go={page}");
        let (p, u) = (profile.path().to_path_buf(), url.clone());
        let dom = tokio::task::spawn_blocking(move || browse(&p, &u, "--dump-dom"))
            .await
            .unwrap();
        let name = page.replace('/', "-");
        let shot = shots.join(format!("{name}.png"));
        let (p, u, arg) = (
            profile.path().to_path_buf(),
            url,
            format!("--screenshot={}", shot.display()),
        );
        tokio::task::spawn_blocking(move || browse(&p, &u, &arg))
            .await
            .unwrap();
        results.push((page, expected, dom, shot));
    }
    s.stop().await;
    for (page, expected, dom, shot) in results {
        assert!(
            dom.contains(&format!("data-loaded=\"{page}\"")),
            "{page}: the page did not finish loading:\n{dom}"
        );
        for text in expected {
            assert!(dom.contains(text), "{page}: {text:?} not shown:\n{dom}");
        }
        assert!(
            std::fs::metadata(&shot)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "no screenshot {}",
            shot.display()
        );
    }
}
