//! The dashboard in a real headless Chromium (Debian's `chromium`, scripts/deps/dashboard.apt):
//! devices checked in over gRPC, a rollout paused by a failure; the page, given the token
//! in the URL fragment, shows the fleet overview; clicking Rollouts, Devices and then a
//! device's link (over the DevTools protocol, as a person would) shows the rollout with
//! its pause reason, the device list and that device's timeline. Each page's `<main>`
//! text is read once it says it loaded; a screenshot of each is kept in
//! target/dashboard-screenshots/.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions};

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

/// What one page shows once loaded: its `data-loaded` route and the text of `<main>`.
#[derive(Debug)]
struct Shown {
    page: String,
    text: String,
    shot: PathBuf,
}

/// Waits until the page has loaded `route`, then reads it and keeps a screenshot.
fn read_page(tab: &headless_chrome::Tab, route: &str, shots: &Path) -> Shown {
    tab.wait_for_element(&format!("body[data-loaded='{route}']"))
        .unwrap_or_else(|e| {
            let got = tab.get_content().unwrap_or_default();
            panic!("{route}: the page did not finish loading ({e}):\n{got}")
        });
    let text = tab
        .wait_for_element("main")
        .and_then(|m| m.get_inner_text())
        .unwrap();
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    let shot = shots.join(format!("{}.png", route.replace('/', "-")));
    std::fs::write(&shot, png).unwrap();
    Shown {
        page: route.to_string(),
        text,
        shot,
    }
}

/// Opens the dashboard with the token, then goes from page to page by clicking its
/// links the way an operator does: Rollouts, Devices, one device, back to Overview.
fn click_through(url: &str, shots: &Path) -> Vec<Shown> {
    let profile = tempfile::tempdir().unwrap();
    let options = LaunchOptions::default_builder()
        .path(Some(chromium()))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1200, 900)))
        .user_data_dir(Some(profile.path().to_path_buf()))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let browser = Browser::new(options).expect("starting chromium with a DevTools connection");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(60));
    tab.navigate_to(url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let click = |selector: &str| {
        tab.wait_for_element(selector)
            .unwrap_or_else(|e| panic!("no {selector} to click: {e}"))
            .click()
            .unwrap();
    };
    let mut shown = vec![read_page(&tab, "overview", shots)];
    click("#nav-rollouts");
    shown.push(read_page(&tab, "rollouts", shots));
    click("#nav-devices");
    shown.push(read_page(&tab, "devices", shots));
    click("#device-table a[href='#device/quay-1']");
    shown.push(read_page(&tab, "device/quay-1", shots));
    // The address bar lost the token on the first load; the API calls still carry it.
    assert!(!tab.get_url().contains("token="), "{}", tab.get_url());
    drop(tab);
    drop(browser);
    shown
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
    let url = format!("http://{}/dashboard/#token={token}", s.addr);
    let shown = tokio::task::spawn_blocking(move || click_through(&url, &shots))
        .await
        .unwrap();
    s.stop().await;
    let expected = [
        vec!["3 devices", "1.0.0", "healthy"],
        vec![
            "v2: pi 2.0.0 (stable)",
            "paused",
            "paused automatically: 1 of 1 devices in wave 1 failed",
        ],
        vec!["quay-0", "quay-1", "quay-2"],
        vec!["Device quay-1", "failed", "probe app failed", "2.0.0"],
    ];
    assert_eq!(shown.len(), expected.len());
    for (page, expected) in shown.iter().zip(expected) {
        for text in expected {
            assert!(
                page.text.contains(text),
                "{}: {text:?} not shown:\n{}",
                page.page,
                page.text
            );
        }
        assert!(
            std::fs::metadata(&page.shot)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "no screenshot {}",
            page.shot.display()
        );
    }
    // Each page shows only its own section: the device list is not on the overview.
    assert!(!shown[0].text.contains("quay-0"), "{}", shown[0].text);
}
