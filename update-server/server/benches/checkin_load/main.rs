//! Check-in load: simulated devices check in concurrently, each over its own reused
//! HTTP/2 connection, each check-in carrying one new upgrade report; a check-in counts
//! once the server's answer acknowledges that report (it is durable then). The same
//! devices then fetch a static response of the same size from nginx over the same
//! transport (the ceiling); then both again over mutual TLS, the devices enrolled and
//! presenting their certificates ([`tls`]). A last run kills the server in the middle of the load,
//! restarts it on the same data, and checks that no acknowledged report was lost.
//!
//! The same load runs against PostgreSQL, one instance and then two sharing one
//! database, the devices alternating between them. The hawkBit DDI poll runs against
//! ours and against goosebit (from PyPI), over HTTP/1.1 keep-alive.
//!
//! `cargo bench -p skerry-server --bench checkin_load` (scripts/bench runs it); needs
//! Debian's `nginx` and `postgresql` (scripts/deps/bench/load.apt) and goosebit
//! (scripts/deps/bench/goosebit.sh). Prints one table. Named rows only:
//! `… --bench checkin_load -- embedded nginx` (of embedded, nginx, tls, ddi, goosebit,
//! postgres, restart).

mod devices;
mod goosebit;
mod nginx;
#[path = "../../../store/tests/support/pg_cluster.rs"]
mod pg_cluster;
mod server;
mod tls;

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

    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    const ROWS: [&str; 7] = [
        "embedded", "nginx", "tls", "ddi", "goosebit", "postgres", "restart",
    ];
    if let Some(unknown) = named.iter().find(|n| !ROWS.contains(&n.as_str())) {
        return Err(format!(
            "no row named {unknown:?}; the rows: {}",
            ROWS.join(", ")
        ));
    }
    let wanted = |row: &str| named.is_empty() || named.iter().any(|n| n == row);
    let mut rows: Vec<(String, LoadResult)> = Vec::new();

    // Embedded default: SQLite in the data directory. Its answer size is what nginx
    // serves (a short run finds it when this row is not wanted).
    let mut srv = server::Server::start(&work.path().join("embedded"))?;
    let length = if wanted("embedded") { RUN } else { RUN / 8 };
    let embedded = rt.block_on(devices::run(Target::Grpc(srv.addr), DEVICES, length, None))?;
    srv.stop();
    let response_size = embedded.response_bytes;
    if wanted("embedded") {
        rows.push((EMBEDDED.into(), embedded));
    }

    // The ceiling: nginx answering a static body of the same size.
    if wanted("nginx") {
        let mut ng = nginx::Nginx::start(&work.path().join("nginx"), response_size)?;
        let ceiling = rt.block_on(devices::run(Target::Static(ng.addr), DEVICES, RUN, None))?;
        ng.stop();
        rows.push((NGINX.into(), ceiling));
    }

    // The same pair over mutual TLS: devices enrolled, nginx with the server's
    // certificates.
    if wanted("tls") {
        tls_rows(&rt, work.path(), response_size, &mut rows)?;
    }

    // hawkBit DDI polls over HTTP/1.1 keep-alive: ours (target tokens, the poll
    // stored as a check-in) beside goosebit's.
    if wanted("ddi") {
        let ddi_data = work.path().join("ddi");
        let tokens = Arc::new(server::Server::ddi_targets(&ddi_data, DEVICES)?);
        let mut srv = server::Server::start(&ddi_data)?;
        let target = Target::DdiPoll(srv.addr, Some(tokens));
        let ours = rt.block_on(devices::run(target, DEVICES, RUN, None))?;
        srv.stop();
        rows.push((DDI_OURS.into(), ours));
    }
    if wanted("goosebit") {
        let mut gb = goosebit::Goosebit::start(&work.path().join("goosebit"))?;
        let target = Target::DdiPoll(gb.addr, None);
        let theirs = rt.block_on(devices::run(target, DEVICES, RUN, None))?;
        gb.stop();
        rows.push((DDI_GOOSEBIT.into(), theirs));
    }

    if wanted("postgres") {
        postgres_rows(&rt, work.path(), &mut rows)?;
    }

    let mut lost = None;
    if wanted("restart") {
        let (row, n) = restart_row(&rt, work.path())?;
        rows.push(("skerry-server, SIGKILL + restart mid-run".into(), row));
        lost = Some(n);
    }

    print_table(&rows, response_size);
    println!();
    println!(
        "transport: one connection per device, {DEVICES} devices, {}s per run, 2 cores \
         shared by load and server. gRPC and nginx rows: one hyper HTTP/2 client, cleartext \
         with prior knowledge unless marked mTLS (TLS 1.3 by rustls, ECDSA P-256 \
         certificates from the server's CAs, ALPN h2, each device its own client \
         certificate). DDI rows: HTTP/1.1 cleartext keep-alive (goosebit serves no HTTP/2)",
        RUN.as_secs()
    );
    let rate = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.per_second())
    };
    if let (Some(a), Some(b)) = (rate(DDI_OURS), rate(DDI_GOOSEBIT)) {
        println!("DDI poll, skerry-server vs goosebit: {:.2}", a / b);
    }
    if let (Some(ours), Some(ceiling)) = (rate(EMBEDDED), rate(NGINX)) {
        println!(
            "embedded vs nginx: {:.2} (target ≥ 0.50); embedded check-ins/s: {ours:.0} (target ≥ 10000)",
            ours / ceiling
        );
    }
    if let (Some(ours), Some(ceiling)) = (rate(EMBEDDED_TLS), rate(NGINX_TLS)) {
        println!("embedded vs nginx over mutual TLS: {:.2}", ours / ceiling);
    }
    if let Some(lost) = lost {
        println!("acknowledged reports lost across the restart: {lost} (must be 0)");
        if lost > 0 {
            return Err(format!(
                "{lost} acknowledged reports were lost across the restart"
            ));
        }
    }
    Ok(())
}

const EMBEDDED: &str = "skerry-server, embedded SQLite";
const NGINX: &str = "nginx, static body of the same size";
const EMBEDDED_TLS: &str = "skerry-server, embedded SQLite, mTLS";
const NGINX_TLS: &str = "nginx, static body, mTLS";
const DDI_OURS: &str = "skerry-server DDI poll, embedded SQLite";
const DDI_GOOSEBIT: &str = "goosebit 0.2.12 DDI poll (uvicorn, SQLite)";

/// The embedded server's TLS port with enrolled devices, then nginx over TLS with the
/// same certificates, the same devices presenting theirs.
fn tls_rows(
    rt: &tokio::runtime::Runtime,
    work: &std::path::Path,
    response_size: usize,
    rows: &mut Vec<(String, LoadResult)>,
) -> Result<(), String> {
    let data = work.join("tls");
    let mut srv = server::Server::start_tls(&data)?;
    let at = srv
        .tls
        .ok_or("the server was started without its TLS port")?;
    let devices_tls = rt.block_on(tls::enroll_devices(&data, at, DEVICES))?;
    let target = Target::GrpcTls(at, Arc::clone(&devices_tls));
    let ours = rt.block_on(devices::run(target, DEVICES, RUN, None))?;
    srv.stop();
    rows.push((EMBEDDED_TLS.into(), ours));
    let pki = data.join("pki");
    let mut ng = nginx::Nginx::start_tls(&work.join("nginx-tls"), response_size, &pki)?;
    let target = Target::StaticTls(ng.addr, devices_tls);
    let ceiling = rt.block_on(devices::run(target, DEVICES, RUN, None))?;
    ng.stop();
    rows.push((NGINX_TLS.into(), ceiling));
    Ok(())
}

/// PostgreSQL (a throwaway cluster on this machine): one instance, then two on one
/// database and one data directory with the devices alternating between them.
fn postgres_rows(
    rt: &tokio::runtime::Runtime,
    work: &std::path::Path,
    rows: &mut Vec<(String, LoadResult)>,
) -> Result<(), String> {
    let cluster = pg_cluster::PgCluster::start();
    let url = cluster.database();
    let mut srv = server::Server::start_on(&work.join("pg-one"), Some(&url))?;
    let one = rt.block_on(devices::run(Target::Grpc(srv.addr), DEVICES, RUN, None))?;
    srv.stop();
    rows.push(("skerry-server, PostgreSQL, one instance".into(), one));
    let url = cluster.database();
    let shared = work.join("pg-two");
    let mut first = server::Server::start_on(&shared, Some(&url))?;
    let mut second = server::Server::start_on(&shared, Some(&url))?;
    let pair = Target::GrpcPair(first.addr, second.addr);
    let two = rt.block_on(devices::run(pair, DEVICES, RUN, None))?;
    first.stop();
    second.stop();
    if two.errors > 0 {
        server::show_log_tail(&first.log);
        server::show_log_tail(&second.log);
    }
    rows.push(("skerry-server, PostgreSQL, two instances".into(), two));
    Ok(())
}

/// Kills and restarts the server in the middle of the load; the run and how many
/// acknowledged reports the database lost.
fn restart_row(
    rt: &tokio::runtime::Runtime,
    work: &std::path::Path,
) -> Result<(LoadResult, u64), String> {
    let data = work.join("restart");
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
    Ok((restart, lost))
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
