//! `skerry-server --data DIR --listen ADDR` starts with nothing set up: it creates DIR,
//! its database and repository, and answers on the address it logs (`url=`).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_binary_starts_on_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("not-yet/there");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skerry-server"))
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref().take(5) {
        let line = line.unwrap();
        if let Some(rest) = line.split("url=http://").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let addr: std::net::SocketAddr = addr.expect("no address printed").parse().unwrap();
    let health = support::get(addr, "/healthz", &[]);
    let missing = support::get(addr, "/repository/metadata/timestamp.json", &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
    assert_eq!(missing.status, 404);
    assert!(data.join("fleet.db").is_file());
    assert!(data.join("repository/targets").is_dir());
}

#[test]
fn a_data_path_that_is_a_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skerry-server"))
        .args(["--data", file.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plain"), "{err}");
}
