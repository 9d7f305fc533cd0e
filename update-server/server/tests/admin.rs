//! Operator commands: waves and thresholds parsed with clear errors, rollouts only of
//! releases the repository holds, and the binary's `rollout`/`pin` commands.

#[path = "../../store/tests/support/pg_cluster.rs"]
mod pg_cluster;
mod support;

use std::path::Path;
use std::process::Command;

use skerry_release::Expiries;
use skerry_rollout::{UnixTime, Wave, BASIS_POINTS};
use skerry_server::admin::{self, parse_percent, parse_waves, AdminError, NewRollout};
use skerry_server::fleet_db::FleetDb;

#[test]
fn percentages_and_waves() {
    assert_eq!(parse_percent("20%"), Some(2000));
    assert_eq!(parse_percent("2.5%"), Some(250));
    assert_eq!(parse_percent("0.05%"), Some(5));
    assert_eq!(parse_percent("100%"), Some(BASIS_POINTS));
    for bad in ["101%", "20", "-1%", "1.234%", "%", "x%", "1e2%"] {
        assert_eq!(parse_percent(bad), None, "{bad}");
    }
    let w = parse_waves("0:5%,1h:25%,1day:100%").unwrap();
    assert_eq!(
        w.waves(),
        [
            Wave {
                after_secs: 0,
                basis_points: 500
            },
            Wave {
                after_secs: 3600,
                basis_points: 2500
            },
            Wave {
                after_secs: 86_400,
                basis_points: BASIS_POINTS
            }
        ]
    );
    for (bad, says) in [
        ("0:5%,0:10%", "must open later"),
        ("1h", "has no ':'"),
        ("0:half", "not a percentage"),
        ("soon:5%", "soon"),
    ] {
        let err = parse_waves(bad).unwrap_err().to_string();
        assert!(
            err.contains(says) && err.contains("OFFSET:PERCENT"),
            "{bad}: {err}"
        );
    }
}

fn new(version: &str) -> NewRollout {
    NewRollout {
        id: "r1".into(),
        board: "pi".into(),
        version: version.into(),
        channel: "stable".into(),
        waves: "0:10%,1h:100%".into(),
        max_bad: "25%".into(),
        min_sample: 4,
        force: false,
    }
}

#[test]
fn a_rollout_needs_a_release_the_repository_holds() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    support::publish(
        &srv,
        &dir.path().join("keys"),
        &[("1.0.0", "stable")],
        &Expiries::default(),
    );
    let db = FleetDb::open(&srv, None).unwrap();
    let err = admin::create_rollout(&db, &new("9.9.9"), UnixTime(1)).unwrap_err();
    assert!(matches!(err, AdminError::NoSuchRelease { .. }), "{err}");
    let mut beta = new("1.0.0");
    beta.channel = "beta".into();
    assert!(matches!(
        admin::create_rollout(&db, &beta, UnixTime(1)),
        Err(AdminError::NoSuchRelease { .. })
    ));
    let r = admin::create_rollout(&db, &new("1.0.0"), UnixTime(1)).unwrap();
    assert_eq!((r.gate.max_bad_permille, r.gate.min_sample), (250, 4));
    let list = admin::list(&db).unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        list[0].starts_with("r1\tpi 1.0.0 (stable)\tactive"),
        "{}",
        list[0]
    );
}

/// `skerry-server --data SRV [--database URL] ARGS…`: whether it succeeded, and what it
/// printed.
fn run_server(srv: &Path, database: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skerry-server"));
    command.arg("--data").arg(srv);
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    let out = command.args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_binary_creates_pauses_lists_and_pins() {
    binary_creates_pauses_lists_and_pins(None);
}

#[test]
fn the_binary_creates_pauses_lists_and_pins_on_postgres() {
    let cluster = pg_cluster::PgCluster::start();
    let url = cluster.database();
    binary_creates_pauses_lists_and_pins(Some(&url));
    // The commands wrote to PostgreSQL, not to an embedded database beside it.
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = run_server(&dir.path().join("srv"), Some(&url), &["rollout", "list"]);
    assert!(out.starts_with("v1\tpi 1.0.0 (stable)\tactive"), "{out}");
}

fn binary_creates_pauses_lists_and_pins(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    support::publish(
        &srv,
        &dir.path().join("keys"),
        &[("1.0.0", "stable")],
        &Expiries::default(),
    );
    let run = |args: &[&str]| run_server(&srv, database, args);
    let (ok, out) = run(&[
        "rollout",
        "create",
        "--id",
        "v1",
        "--board",
        "pi",
        "--version",
        "1.0.0",
        "--waves",
        "0:50%,2h:100%",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["rollout", "pause", "v1", "--note", "field report"]);
    assert!(ok, "{out}");
    let (_, out) = run(&["rollout", "list"]);
    assert!(out.contains("paused by an operator: field report"), "{out}");
    let (ok, out) = run(&["rollout", "resume", "v1"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["rollout", "resume", "v1"]);
    assert!(
        !ok && out.contains("rollout \"v1\" is active; cannot resume it"),
        "{out}"
    );
    let (ok, out) = run(&["pin", "ghost", "1.0.0"]);
    assert!(!ok && out.contains("no device named \"ghost\""), "{out}");
    let (ok, out) = run(&[
        "rollout",
        "create",
        "--id",
        "v9",
        "--board",
        "pi",
        "--version",
        "1.0.0",
        "--max-bad",
        "lots",
    ]);
    assert!(!ok && out.contains("--max-bad \"lots\""), "{out}");
}

#[test]
fn maintenance_windows_from_the_command_line() {
    use skerry_server::admin::{parse_clock, parse_days};
    assert_eq!(parse_clock("23:30"), Some(23 * 60 + 30));
    for bad in ["24:00", "7:00", "07:60", "0700"] {
        assert_eq!(parse_clock(bad), None, "{bad}");
    }
    assert_eq!(parse_days("mon,sun").map(|d| d.bits()), Some(0b100_0001));
    assert_eq!(parse_days("daily").map(|d| d.bits()), Some(0x7f));
    assert!(parse_days("funday").is_none());
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let out = Command::new(env!("CARGO_BIN_EXE_skerry-server"))
        .arg("--data")
        .arg(&srv)
        .args([
            "window",
            "add",
            "--group",
            "site=mine-7",
            "--days",
            "sat,sun",
            "--start",
            "23:00",
            "--length",
            "2h",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = FleetDb::open(&srv, None).unwrap();
    let windows = db.store.windows().unwrap();
    assert_eq!(windows.len(), 1);
    assert_eq!(
        (
            windows[0].start_minute,
            windows[0].length_minutes,
            windows[0].days.bits()
        ),
        (1380, 120, 0b110_0000)
    );
    assert_eq!(
        windows[0].group.get("site").map(String::as_str),
        Some("mine-7")
    );
    let bad = admin::add_window(
        &db,
        &admin::NewWindow {
            group: vec!["nolabel".into()],
            days: "daily".into(),
            start: "01:00".into(),
            length: "1h".into(),
        },
    );
    assert!(bad.unwrap_err().to_string().contains("--group (key=value)"));
}
