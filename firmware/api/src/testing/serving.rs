//! A server task on a loopback port for tests: it serves until told to stop (or until
//! it is dropped), and its end is checked.

use std::future::Future;
use std::pin::Pin;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::version::VersionInfo;
use crate::ServeError;

/// The future a served machine stops on.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A server spawned on `127.0.0.1`, port chosen by the system.
#[derive(Debug)]
pub struct Serving {
    /// `https://localhost:PORT`.
    pub endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Serving {
    /// Binds `127.0.0.1:0` and spawns `serve(listener, shutdown)`.
    pub async fn spawn<F, Fut>(serve: F) -> std::io::Result<Serving>
    where
        F: FnOnce(TcpListener, Shutdown) -> Fut,
        Fut: Future<Output = Result<(), ServeError>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            Box::pin(async {
                let _ = stopped.await;
            }),
        ));
        Ok(Serving {
            endpoint: format!("https://localhost:{port}"),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops the server and waits for it: an error if it failed or panicked.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(served) => served.map_err(|e| format!("the server failed: {e}")),
                Err(e) => Err(format!("the server task ended badly: {e}")),
            },
            None => Ok(()),
        }
    }
}

/// The version the API tests' machines report.
pub fn sample_version() -> VersionInfo {
    VersionInfo {
        daemon_version: "0.1.0".into(),
        release_version: "2026.12.1".into(),
        board: "rpi4".into(),
        booted_slot: "A".into(),
    }
}
