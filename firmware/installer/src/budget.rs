//! A bound, in bytes, on the decompressed chunks between the fetch thread and the
//! writer: memory stays bounded by size whatever the chunk sizes (a count of chunks
//! would let large chunks multiply it).

use std::sync::{Condvar, Mutex};

/// Bytes held in flight, at most `limit` (a single larger chunk passes alone).
#[derive(Debug)]
pub(crate) struct ByteBudget {
    limit: u64,
    state: Mutex<Held>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct Held {
    bytes: u64,
    closed: bool,
}

impl ByteBudget {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            state: Mutex::new(Held::default()),
            freed: Condvar::new(),
        }
    }

    /// Waits until `n` more bytes fit, and holds them. `false`: the budget was closed
    /// (the writer stopped), so the caller stops too.
    pub(crate) fn take(&self, n: u64) -> bool {
        let Ok(mut held) = self.state.lock() else {
            return false;
        };
        while !held.closed && held.bytes > 0 && held.bytes + n > self.limit {
            held = match self.freed.wait(held) {
                Ok(h) => h,
                Err(_) => return false,
            };
        }
        if held.closed {
            return false;
        }
        held.bytes += n;
        true
    }

    /// Gives back `n` bytes the writer is done with.
    pub(crate) fn give(&self, n: u64) {
        if let Ok(mut held) = self.state.lock() {
            held.bytes = held.bytes.saturating_sub(n);
            self.freed.notify_all();
        }
    }

    /// No more bytes will be given back: wakes and stops every waiter.
    pub(crate) fn close(&self) {
        if let Ok(mut held) = self.state.lock() {
            held.closed = true;
            self.freed.notify_all();
        }
    }

    #[cfg(test)]
    fn held(&self) -> u64 {
        self.state.lock().map(|h| h.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn takes_wait_for_gives_beyond_the_limit() {
        let budget = Arc::new(ByteBudget::new(100));
        assert!(budget.take(60));
        let b = budget.clone();
        let waiter = std::thread::spawn(move || b.take(60));
        // The second take cannot fit until the first is given back.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(budget.held(), 60);
        budget.give(60);
        assert!(waiter.join().unwrap());
        assert_eq!(budget.held(), 60);
    }

    #[test]
    fn a_chunk_larger_than_the_limit_passes_alone_and_close_stops_waiters() {
        let budget = Arc::new(ByteBudget::new(100));
        assert!(budget.take(500));
        let b = budget.clone();
        let waiter = std::thread::spawn(move || b.take(1));
        budget.close();
        assert!(!waiter.join().unwrap());
    }
}
