//! Progress for downloads whose size is not known up front (the metadata walk): a
//! helper thread reports the fetcher's byte counter to [`Progress`] while they run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::install::Progress;
use crate::transport::Fetcher;

/// How often the byte counter is reported.
const TICK: Duration = Duration::from_millis(100);

/// Runs `work` as phase `name`, reporting every byte `fetcher` receives meanwhile.
pub(crate) fn with_ticker<T>(
    fetcher: &Fetcher,
    progress: &dyn Progress,
    name: &str,
    work: impl FnOnce() -> T,
) -> T {
    progress.phase(name, 0);
    let done = AtomicBool::new(false);
    let done = &done;
    let mut reported = fetcher.bytes_received();
    std::thread::scope(|scope| {
        let ticker = scope.spawn(move || loop {
            let stop = done.load(Ordering::Acquire);
            let now = fetcher.bytes_received();
            progress.advance(now.saturating_sub(reported));
            reported = now;
            if stop {
                return;
            }
            std::thread::park_timeout(TICK);
        });
        let out = work();
        done.store(true, Ordering::Release);
        ticker.thread().unpark();
        out
    })
}
