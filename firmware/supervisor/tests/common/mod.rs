//! Helpers shared by the process tests: reading events with a generous deadline (a
//! hang fails with what was seen instead of stalling CI), and /proc inspection.

#![allow(dead_code)]

use std::time::Duration;

use skerry_supervisor::{BackoffSpec, ServiceEvent, ServiceSpec, ServiceState};
use tokio::sync::broadcast;

/// Far above anything these tests need; only a broken supervisor reaches it.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Reads events until `done` accepts one; returns every event read (that one last).
/// Checks that sequence numbers grow by exactly one.
pub async fn events_until(
    events: &mut broadcast::Receiver<ServiceEvent>,
    mut done: impl FnMut(&ServiceEvent) -> bool,
) -> Vec<ServiceEvent> {
    let mut seen: Vec<ServiceEvent> = Vec::new();
    let read = async {
        loop {
            let event = events
                .recv()
                .await
                .expect("event channel open and not lagging");
            if let Some(last) = seen.last() {
                assert_eq!(event.seq, last.seq + 1, "sequence numbers have no gaps");
            }
            let stop = done(&event);
            seen.push(event);
            if stop {
                break;
            }
        }
    };
    if tokio::time::timeout(DEADLINE, read).await.is_err() {
        panic!("no matching event within {DEADLINE:?}; saw {seen:#?}");
    }
    seen
}

pub fn is(service: &str, pred: impl Fn(&ServiceState) -> bool) -> impl Fn(&ServiceEvent) -> bool {
    let service = service.to_string();
    move |e| e.service == service && pred(&e.state)
}

/// A spec with a quick backoff and stop grace, for tests.
pub fn quick(name: &str, argv: &[&str]) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, argv.iter().copied());
    spec.backoff = BackoffSpec {
        base_ms: 20,
        factor: 2,
        cap_ms: 1_000,
        reset_after_ms: 60_000,
    };
    spec.stop_grace_ms = 300;
    spec
}

/// Fields of /proc/PID/stat after the command name: (state, ppid, pgid).
pub fn proc_stat(pid: u32) -> Option<(char, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((state, ppid, pgid))
}

/// Every pid in process group `pgid`, with its state letter.
pub fn group_members(pgid: u32) -> Vec<(u32, char)> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc readable")
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((state, _, group)) = proc_stat(pid) {
            if group == pgid {
                members.push((pid, state));
            }
        }
    }
    members
}

/// Our own children that are zombies (exited and not reaped).
pub fn our_zombies() -> Vec<u32> {
    let me = std::process::id();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc readable")
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(('Z', ppid, _)) = proc_stat(pid) {
            if ppid == me {
                zombies.push(pid);
            }
        }
    }
    zombies
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The python3 the HTTP tests serve with; fails naming what to install.
pub fn python3() -> String {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output();
    match found {
        Ok(out) if out.status.success() => "python3".into(),
        _ => panic!("python3 is needed for the TCP/HTTP health check tests: install python3"),
    }
}
