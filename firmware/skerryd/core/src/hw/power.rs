//! Reboot and shutdown.

use std::path::PathBuf;
use std::sync::Mutex;

use tokio::sync::watch;

/// What the machine was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerRequest {
    /// Restart; `tryboot` asks the Raspberry Pi firmware for its one-shot trial boot.
    Reboot {
        /// `reboot '0 tryboot'`.
        tryboot: bool,
    },
    /// Power off.
    Shutdown,
}

impl PowerRequest {
    /// As written to `run/power-request`.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerRequest::Reboot { tryboot: false } => "reboot",
            PowerRequest::Reboot { tryboot: true } => "reboot tryboot",
            PowerRequest::Shutdown => "shutdown",
        }
    }
}

/// Carries out power requests. The first request wins; later ones are ignored.
pub trait Power: Send + Sync + 'static {
    /// Asks for `request`; the daemon stops in an orderly way and then it happens.
    fn request(&self, request: PowerRequest);
    /// The request made so far, if any.
    fn requested(&self) -> Option<PowerRequest>;
}

/// `--root` mode: the request is recorded in `DIR/run/power-request` and the daemon is
/// told to stop.
#[derive(Debug)]
pub struct RootPower {
    file: PathBuf,
    chosen: Mutex<Option<PowerRequest>>,
    stop: watch::Sender<bool>,
}

impl RootPower {
    /// Writes requests to `file` and signals `stop`.
    pub fn new(file: PathBuf, stop: watch::Sender<bool>) -> Self {
        RootPower {
            file,
            chosen: Mutex::new(None),
            stop,
        }
    }
}

impl Power for RootPower {
    fn request(&self, request: PowerRequest) {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if chosen.is_some() {
            return;
        }
        *chosen = Some(request);
        if let Err(e) = skerry_medium::write_atomic(&self.file, request.as_str().as_bytes()) {
            tracing::error!(file = %self.file.display(), error = %e, "could not record the power request");
        }
        tracing::info!(
            request = request.as_str(),
            "power request: stopping the daemon"
        );
        let _ = self.stop.send(true);
    }

    fn requested(&self) -> Option<PowerRequest> {
        *self.chosen.lock().unwrap_or_else(|e| e.into_inner())
    }
}
