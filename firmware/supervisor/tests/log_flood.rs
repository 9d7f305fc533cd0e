//! A hostile service floods stdout with short lines and stderr with one endless line:
//! the rings stay within their limits and this process's resident memory barely moves.
//! (Its own test binary, so the RSS it reads is not shared with other tests.)

mod common;

use std::time::Duration;

use common::{events_until, is, quick};
use skerry_supervisor::{
    LogLimits, LogStream, RestartPolicy, ServiceState, Supervisor, SupervisorOptions,
};

const FLOOD_BYTES: u64 = 64 * 1024 * 1024;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_both_streams_keeps_memory_bounded() {
    let limits = LogLimits {
        ring_bytes: 64 * 1024,
        max_line_bytes: 1024,
    };
    let script = format!(
        "yes 'a short line of output' | head -c {FLOOD_BYTES} & \
         head -c {FLOOD_BYTES} /dev/zero | tr '\\0' x >&2; wait"
    );
    let mut spec = quick("flood", &["sh", "-c", &script]);
    spec.env.insert("PATH".into(), "/usr/bin:/bin".into());
    spec.restart = RestartPolicy::Never;
    spec.logs = limits.clone();
    let before = rss_kib();
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();

    let mut peak_held = 0;
    let mut peak_rss = before;
    let watch = async {
        loop {
            for stream in [LogStream::Stdout, LogStream::Stderr] {
                peak_held =
                    peak_held.max(supervisor.log_stats("flood", stream).unwrap().held_bytes);
            }
            peak_rss = peak_rss.max(rss_kib());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = watch => unreachable!(),
        _ = events_until(&mut events, is("flood", |s| matches!(s, ServiceState::Exited { .. }))) => {}
    }
    // Let the capture tasks drain what is left in the pipes.
    // `head` cuts the last stdout line short: it is stored when the pipe ends.
    let line = "a short line of output".len() as u64 + 1;
    let out_lines = FLOOD_BYTES / line + u64::from(FLOOD_BYTES % line != 0);
    let err_lines = FLOOD_BYTES / 1024;
    let (mut out, mut err) = (Default::default(), Default::default());
    for _ in 0..2_000 {
        out = supervisor.log_stats("flood", LogStream::Stdout).unwrap();
        err = supervisor.log_stats("flood", LogStream::Stderr).unwrap();
        if out.total_lines == out_lines && err.total_lines == err_lines {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = rss_kib();
    println!(
        "flood of 2 x {} MiB: ring limit {} KiB per stream, peak held {} KiB, RSS {} -> peak {} -> {} KiB",
        FLOOD_BYTES >> 20,
        limits.ring_bytes / 1024,
        peak_held / 1024,
        before,
        peak_rss,
        after
    );
    // Every byte went through the rings…
    assert_eq!(out.total_lines, out_lines);
    assert_eq!(err.total_lines, err_lines);
    assert!(out.dropped_lines > 0 && err.dropped_lines > 0);
    // …and they held no more than their limit plus one pending line each.
    let bound = limits.ring_bytes + limits.max_line_bytes;
    assert!(
        out.held_bytes <= bound && err.held_bytes <= bound,
        "{out:?} {err:?}"
    );
    assert!(peak_held <= bound, "peak {peak_held}");
    let lines = supervisor.logs("flood", LogStream::Stderr).unwrap();
    assert!(lines.iter().all(|l| l.cut && l.text.len() == 1024));
    // 128 MiB went through; the process grew by far less than one stream's flood.
    assert!(
        peak_rss.saturating_sub(before) < 16 * 1024,
        "RSS grew {before} -> {peak_rss} KiB"
    );
    supervisor.shutdown().await;
}
