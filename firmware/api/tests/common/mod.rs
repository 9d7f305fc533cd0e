//! Test fixtures: a throwaway machine PKI and the test machine (`FixedMachine`) served
//! on a loopback port.

#![allow(dead_code, reason = "each test binary uses a different part")]

use skerry_api::testing::{sample_version, FixedMachine, Serving};
pub use skerry_api::testing::{Pem, TestCa};
use skerry_api::{pb, ClientTls};

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

/// The API served on a loopback port; dropped, it shuts the server down.
pub struct Served {
    pub endpoint: String,
    pub ca: TestCa,
    serving: Serving,
}

impl Served {
    pub async fn start() -> Served {
        let ca = TestCa::new("machine CA").unwrap();
        let tls = ca.server_tls().unwrap();
        let machine = FixedMachine {
            version: sample_version(),
            health: sample_health(),
        };
        let serving = Serving::spawn(|listener, shutdown| async move {
            skerry_api::serve(listener, &tls, machine, shutdown).await
        })
        .await
        .unwrap();
        Served {
            endpoint: serving.endpoint.clone(),
            ca,
            serving,
        }
    }

    pub fn client_tls(&self, pem: &Pem) -> ClientTls {
        self.ca.client_tls(pem)
    }

    /// Stops the server and checks it ended cleanly.
    pub async fn stop(self) {
        self.serving.stop().await.unwrap();
    }
}
