//! Test fixtures: a throwaway machine PKI and the test machine (`FixedMachine`) served
//! on a loopback port.

#![allow(dead_code, reason = "each test binary uses a different part")]

use skerry_api::testing::FixedMachine;
pub use skerry_api::testing::{Pem, TestCa};
use skerry_api::{pb, ClientTls, ServerTls, VersionInfo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Two checks, one critical and healthy, one not critical and failing.
pub fn sample_health() -> pb::HealthResponse {
    pb::HealthResponse {
        overall: pb::HealthStatus::Healthy.into(),
        checks: vec![
            pb::HealthCheck {
                name: "api-port".into(),
                critical: true,
                status: pb::HealthStatus::Healthy.into(),
                message: String::new(),
                last_run: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                consecutive_failures: 0,
            },
            pb::HealthCheck {
                name: "disk".into(),
                critical: false,
                status: pb::HealthStatus::Unhealthy.into(),
                message: "var is 97% full".into(),
                last_run: None,
                consecutive_failures: 3,
            },
        ],
    }
}

pub fn sample_version() -> VersionInfo {
    VersionInfo {
        daemon_version: "0.1.0".into(),
        release_version: "2026.12.1".into(),
        board: "rpi4".into(),
        booted_slot: "A".into(),
    }
}

/// The API served on a loopback port; dropped, it shuts the server down.
pub struct Served {
    pub endpoint: String,
    pub ca: TestCa,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), skerry_api::ServeError>>>,
}

impl Served {
    pub async fn start() -> Served {
        let ca = TestCa::new("machine CA").unwrap();
        let node = ca.node().unwrap();
        let tls = ServerTls::from_pem(&node.cert, &node.key, &ca.cert_pem);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let machine = FixedMachine {
            version: sample_version(),
            health: sample_health(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            skerry_api::serve(listener, &tls, machine, async {
                let _ = stopped.await;
            })
            .await
        });
        Served {
            endpoint: format!("https://localhost:{port}"),
            ca,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn client_tls(&self, pem: &Pem) -> ClientTls {
        self.ca.client_tls(pem)
    }

    /// Stops the server and checks it ended cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}
