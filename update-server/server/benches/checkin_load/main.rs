//! Check-in load: simulated devices check in concurrently, each over its own reused
//! HTTP/2 connection, each check-in carrying one new upgrade report; a check-in counts
//! once the server's answer acknowledges that report (it is durable then). The same
//! devices then fetch a static response of the same size from nginx over the same
//! transport (the ceiling). A last run kills the server in the middle of the load,
//! restarts it on the same data, and checks that no acknowledged report was lost.
//!
//! The same load runs against PostgreSQL, one instance and then two sharing one
//! database, the devices alternating between them. The hawkBit DDI poll runs against
//! ours and against goosebit (from PyPI), over HTTP/1.1 keep-alive.
//!
//! `cargo bench -p skerry-server --bench checkin_load` (scripts/bench runs it); needs
//! Debian's `nginx` and `postgresql` (scripts/deps/bench/load.apt) and goosebit
//! (scripts/deps/bench/goosebit.sh). Prints one table.

mod devices;
mod goosebit;
mod nginx;
#[path = "../../../store/tests/support/pg_cluster.rs"]
mod pg_cluster;
mod server;

use std::sync::Arc;
use std::time::Duration;

use devices::{LoadResult, Target};

/// Simulated devices, each with its own connection.
const DEVICES: usize = 64;
/// How long each measured run lasts.
const RUN: Duration = Duration::from_secs(8);

fn main() {
    if let Err(e) = run() {
        eprintln!("checkin_load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let work = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;

    let mut rows: Vec<(String, LoadResult)> = Vec::new();

    // Embedded default: SQLite in the data directory.
    let mut srv = server::Server::start(&work.path().join("embedded"))?;
    let embedded = rt.block_on(devices::run(Target::Grpc(srv.addr), DEVICES, RUN, None))?;
    let response_size = embedded.response_bytes;
    srv.stop();
    rows.push(("skerry-server, embedded SQLite".into(), embedded));

    // The ceiling: nginx answering a static body of the same size.
    let mut ng = nginx::Nginx::start(&work.path().join("nginx"), response_size)?;
    let ceiling = rt.block_on(devices::run(Target::Static(ng.addr), DEVICES, RUN, None))?;
    ng.stop();
    rows.push(("nginx, static body of the same size".into(), ceiling));

    // hawkBit DDI polls over HTTP/1.1 keep-alive: ours (target tokens, the poll
    // stored as a check-in) beside goosebit's.
    let ddi_data = work.path().join("ddi");
    let tokens = Arc::new(server::Server::ddi_targets(&ddi_data, DEVICES)?);
    let mut srv = server::Server::start(&ddi_data)?;
    let ours = rt.block_on(devices::run(
        Target::DdiPoll(srv.addr, Some(tokens)),
        DEVICES,
        RUN,
        None,
    ))?;
    srv.stop();
    rows.push(("skerry-server DDI poll, embedded SQLite".into(), ours));
    let mut gb = goosebit::Goosebit::start(&work.path().join("goosebit"))?;
    let theirs = rt.block_on(devices::run(
        Target::DdiPoll(gb.addr, None),
        DEVICES,
        RUN,
        None,
    ))?;
    gb.stop();
    rows.push(("goosebit 0.2.12 DDI poll (uvicorn, SQLite)".into(), theirs));

    // PostgreSQL (a throwaway cluster on this machine): one instance, then two on one
    // database and one data directory with the devices alternating between them.
    let cluster = pg_cluster::PgCluster::start();
    let url = cluster.database();
    let mut srv = server::Server::start_on(&work.path().join("pg-one"), Some(&url))?;
    let one = rt.block_on(devices::run(Target::Grpc(srv.addr), DEVICES, RUN, None))?;
    srv.stop();
    rows.push(("skerry-server, PostgreSQL, one instance".into(), one));
    let url = cluster.database();
    let shared = work.path().join("pg-two");
    let mut first = server::Server::start_on(&shared, Some(&url))?;
    let mut second = server::Server::start_on(&shared, Some(&url))?;
    let two = rt.block_on(devices::run(
        Target::GrpcPair(first.addr, second.addr),
        DEVICES,
        RUN,
        None,
    ))?;
    first.stop();
    second.stop();
    if two.errors > 0 {
        server::show_log_tail(&first.log);
        server::show_log_tail(&second.log);
    }
    rows.push(("skerry-server, PostgreSQL, two instances".into(), two));
    drop(cluster);

    // Kill and restart in the middle of the load.
    let data = work.path().join("restart");
    let mut srv = server::Server::start(&data)?;
    let restart = rt.block_on(devices::run(
        Target::Grpc(srv.addr),
        DEVICES,
        RUN,
        Some(devices::Restart {
            after: RUN / 2,
            server: &mut srv,
        }),
    ))?;
    srv.stop();
    let lost = server::lost_acknowledged(&data, &restart.acknowledged)?;
    // The check itself must be able to fail: claim one report more per device than the
    // server acknowledged, and every device must count as lost.
    let inflated = restart
        .acknowledged
        .iter()
        .map(|(id, n)| (id.clone(), n + 1))
        .collect();
    let caught = server::lost_acknowledged_quiet(&data, &inflated)?;
    if caught != restart.acknowledged.len() as u64 {
        return Err(format!(
            "the loss check missed claimed reports: {caught} of {} devices",
            restart.acknowledged.len()
        ));
    }
    rows.push(("skerry-server, SIGKILL + restart mid-run".into(), restart));

    print_table(&rows, response_size);
    println!();
    println!(
        "transport: HTTP/2 cleartext (prior knowledge), no TLS, one connection per device, \
         {DEVICES} devices, {}s per run, 2 cores shared by load and server; the DDI rows: \
         HTTP/1.1 cleartext keep-alive, one connection per device (goosebit serves no HTTP/2)",
        RUN.as_secs()
    );
    let ddi = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.starts_with(name))
            .map(|(_, r)| r.per_second())
    };
    if let (Some(a), Some(b)) = (ddi("skerry-server DDI"), ddi("goosebit")) {
        println!("DDI poll, skerry-server vs goosebit: {:.2}", a / b);
    }
    let ceiling_rate = rows[1].1.per_second();
    let ours = rows[0].1.per_second();
    println!(
        "embedded vs nginx: {:.2} (target ≥ 0.50); embedded check-ins/s: {:.0} (target ≥ 10000)",
        ours / ceiling_rate,
        ours
    );
    println!("acknowledged reports lost across the restart: {lost} (must be 0)");
    if lost > 0 {
        return Err(format!(
            "{lost} acknowledged reports were lost across the restart"
        ));
    }
    Ok(())
}

fn print_table(rows: &[(String, LoadResult)], response_size: usize) {
    println!(
        "{:<44} {:>12} {:>10} {:>10} {:>8}",
        "target", "per second", "p50 ms", "p99 ms", "errors"
    );
    for (name, r) in rows {
        println!(
            "{:<44} {:>12.0} {:>10.2} {:>10.2} {:>8}",
            name,
            r.per_second(),
            r.percentile_ms(0.50),
            r.percentile_ms(0.99),
            r.errors
        );
    }
    println!("(answer size {response_size} bytes)");
}
