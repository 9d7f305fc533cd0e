//! skerryd's benchmark table: idle memory with a typical config, the stripped release
//! binary's size, the time from exec to an answered API call, and controller-reconcile
//! throughput inside the daemon (all its controllers registered and running) next to
//! the same controllers on a bare runtime.
//!
//! Run with `cargo bench -p skerryd` (or `scripts/bench`). Figures are medians of a few
//! runs; the targets are the (24 MiB RSS, 20 MiB binary, 300 ms to ready) and
//! each row gives the ratio to its target.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use skerry_api::pb;
use skerry_hil::{DaemonBoard, DaemonBoardOptions};
use skerry_runtime::{Resource, ResourceSpec, Runtime, RuntimeOptions, State, Transform};
use tokio::sync::watch;

/// Starts measured for the time to ready.
const STARTS: usize = 9;
/// How long the daemon idles before its RSS is read.
const IDLE: Duration = Duration::from_secs(5);
/// Input writes for the throughput rows.
const WRITES: u64 = 20_000;
/// Input ids the writes are spread over.
const IDS: u64 = 64;

const TARGET_RSS_MIB: f64 = 24.0;
const TARGET_BINARY_MIB: f64 = 20.0;
const TARGET_READY_MS: f64 = 300.0;

/// A typical edge box: hostname and identity, a static link with a route and DNS, time
/// servers, three services with health checks (one critical), an update source.
fn typical_config(dir: &Path) -> String {
    format!(
        "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: edge-01
identity:
  machineId: bench-1
  site: bench
---
apiVersion: skerry.dev/v1alpha1
kind: NetworkConfig
links:
  - name: eth0
    addresses: [192.168.10.20/24]
routes:
  - destination: 0.0.0.0/0
    gateway: 192.168.10.1
    link: eth0
dns:
  servers: [192.168.10.1]
---
apiVersion: skerry.dev/v1alpha1
kind: TimeConfig
sntp:
  servers: [127.0.0.1]
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: app
command: [sleep, \"3600\"]
healthChecks:
  - name: alive
    probe:
      exec:
        command: [\"true\"]
    interval: 2s
    timeout: 1s
    critical: true
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: broker
command: [sleep, \"3600\"]
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: agent
command: [sleep, \"3600\"]
dependsOn: [broker]
---
apiVersion: skerry.dev/v1alpha1
kind: UpdateConfig
repository: file://{repo}
trustedRoot: {root}
board: sim-x86
probation: 10m
",
        repo = dir.join("repo").display(),
        root = dir.join("root.json").display(),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn stripped_size(binary: &Path, dir: &Path) -> f64 {
    let copy = dir.join("skerryd.stripped");
    std::fs::copy(binary, &copy).expect("copying the binary");
    let status = Command::new("strip")
        .arg(&copy)
        .status()
        .expect("running strip (Debian package binutils; scripts/install-deps bench installs it)");
    assert!(status.success(), "strip failed");
    std::fs::metadata(&copy).expect("stripped binary").len() as f64
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Input {
    seq: u64,
}
impl ResourceSpec for Input {
    const TYPE: &'static str = "Inputs.bench.skerry.dev";
    const NAMESPACE: &'static str = "bench";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Output {
    seq: u64,
}
impl ResourceSpec for Output {
    const TYPE: &'static str = "Outputs.bench.skerry.dev";
    const NAMESPACE: &'static str = "bench";
}

/// Writes [`WRITES`] inputs over [`IDS`] ids through one transform and measures until
/// the last output is there.
async fn throughput(state: State, mut runtime: Runtime) -> Rate {
    runtime
        .register(Transform::new("bench.transform", |r: &Resource<Input>| {
            Some(Output { seq: r.spec.seq })
        }))
        .expect("the bench controller registers");
    let handle = runtime.start();
    let start = Instant::now();
    for seq in 0..WRITES {
        state
            .apply_owned(&format!("in-{}", seq % IDS), None, Input { seq })
            .expect("write");
        if seq % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Done when every id's output carries the last seq written to it.
    let last = |id: u64| (WRITES - 1 - id) / IDS * IDS + id;
    loop {
        let done = (0..IDS).all(|id| {
            state
                .get::<Output>(&format!("in-{id}"))
                .is_ok_and(|r| r.spec.seq == last(id))
        });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let reconciles = handle.status("bench.transform").map_or(0, |s| s.reconciles);
    handle.shutdown().await;
    Rate {
        writes: WRITES as f64 / elapsed,
        reconciles: reconciles as f64 / elapsed,
    }
}

/// What one throughput run measured.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Input writes taken per second until the last output was there.
    writes: f64,
    /// Reconciles the transform ran per second (writes to one id coalesce).
    reconciles: f64,
}

fn main() {
    let binary = Path::new(env!("CARGO_BIN_EXE_skerryd"));
    let work = tempfile::tempdir().expect("tempdir");
    let options = DaemonBoardOptions {
        config: Some(typical_config(work.path())),
        ..DaemonBoardOptions::default()
    };
    let mut board = DaemonBoard::build(&work.path().join("board"), binary, options).expect("board");
    let tokio = tokio::runtime::Runtime::new().expect("tokio");

    // Exec → an answered Version call over mutual TLS.
    let mut ready_ms = Vec::new();
    for _ in 0..STARTS {
        let start = Instant::now();
        board.power_on().expect("power on");
        tokio.block_on(async {
            let mut client = board.client(Some("os:reader")).await.expect("connect");
            client
                .version(pb::VersionRequest {})
                .await
                .expect("version");
        });
        ready_ms.push(start.elapsed().as_secs_f64() * 1e3);
        board.stop().expect("stop");
    }
    let ready = median(ready_ms);

    // Idle RSS with the typical config: services running, checks probing.
    board.power_on().expect("power on");
    std::thread::sleep(IDLE);
    let pid = board.pid().expect("running");
    let rss = rss_kib(pid) / 1024.0;
    let services = tokio.block_on(async {
        let mut client = board.client(Some("os:reader")).await.expect("connect");
        client
            .service_list(pb::ServiceListRequest {})
            .await
            .expect("services")
            .into_inner()
            .services
            .len()
    });
    board.stop().expect("stop");

    let binary_mib = stripped_size(binary, work.path()) / (1024.0 * 1024.0);

    // Reconcile throughput: the daemon's own runtime with every subsystem registered,
    // next to a bare runtime, one after the other in this process.
    let (inside, bare) = tokio.block_on(async {
        let layout = skerryd_core::Layout::new(board.root());
        let (stop, stopping) = watch::channel(false);
        let context = skerryd::daemon::open(&layout, stop, stopping).expect("open the root");
        let mut runtime = Runtime::new(context.state.clone(), RuntimeOptions::default());
        let _ops = skerryd::daemon::register(&mut runtime, &context).expect("register");
        let inside = throughput(context.state.clone(), runtime).await;
        context.stop_hooks.run(Duration::from_secs(10)).await;
        let state = State::in_memory();
        let bare = throughput(
            state.clone(),
            Runtime::new(state, RuntimeOptions::default()),
        )
        .await;
        (inside, bare)
    });

    println!(
        "skerryd benchmark ({STARTS} starts; RSS after {IDLE:?} idle with {services} services)\n"
    );
    println!(
        "{:<52} {:>14} {:>10} {:>8}",
        "metric", "value", "target", "ratio"
    );
    let row = |name: &str, value: String, target: String, ratio: f64| {
        println!("{name:<52} {value:>14} {target:>10} {ratio:>8.2}");
    };
    row(
        "idle RSS, typical config",
        format!("{rss:.1} MiB"),
        format!("{TARGET_RSS_MIB} MiB"),
        rss / TARGET_RSS_MIB,
    );
    row(
        "release binary, stripped",
        format!("{binary_mib:.1} MiB"),
        format!("{TARGET_BINARY_MIB} MiB"),
        binary_mib / TARGET_BINARY_MIB,
    );
    row(
        "exec → Version answered over mutual TLS (median)",
        format!("{ready:.0} ms"),
        format!("{TARGET_READY_MS} ms"),
        ready / TARGET_READY_MS,
    );
    println!();
    println!(
        "{:<52} {:>14} {:>10} {:>8}",
        "controllers: one transform, 64 ids, 20000 writes", "per second", "", "ratio"
    );
    row(
        "writes taken, bare runtime",
        format!("{:.0}", bare.writes),
        String::new(),
        1.0,
    );
    row(
        "writes taken, inside the daemon (all subsystems)",
        format!("{:.0}", inside.writes),
        String::new(),
        inside.writes / bare.writes,
    );
    row(
        "reconciles run, bare runtime",
        format!("{:.0}", bare.reconciles),
        String::new(),
        1.0,
    );
    row(
        "reconciles run, inside the daemon (all subsystems)",
        format!("{:.0}", inside.reconciles),
        String::new(),
        inside.reconciles / bare.reconciles,
    );
}
