//! `skerryctl release push` and `skerryctl fleet …` against the real skerry-server:
//! a release made by `release add` is pushed and served (the release list and the
//! served target bytes show it); a tampered push (flipped byte) and a replayed one are
//! refused with the server's message, HTTP status and exit code 4, leaving the served
//! repository byte-identical; a rollout is created and paused and shows in table, JSON
//! and YAML; join tokens are made, listed and revoked; bad tokens and unknown devices
//! fail by name.

mod support {
    pub mod cli;
    pub mod release;
    pub mod update_server;
}

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::cli::{ok, skerryctl};
use support::release::{add, init, keygen, s};
use support::update_server::UpdateServer;

fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() != ".publish.lock" {
                out.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw[..split])
    );
    raw[split + 4..].to_vec()
}

/// One operator API request with a body; returns the status and the JSON answer.
fn api(addr: SocketAddr, method: &str, path: &str, auth: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&raw[..split])
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (
        status,
        serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null),
    )
}

/// Runs skerryctl; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = skerryctl()
        .args(args)
        .env_remove("SKERRY_SERVER")
        .env_remove("SKERRY_OPERATOR_TOKEN_FILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn image(path: &Path, seed: u32) {
    let bytes: Vec<u8> = (0..400_000u32)
        .map(|n| (n.wrapping_mul(2654435761).wrapping_add(seed) >> 11) as u8)
        .collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn push_then_steer_the_fleet_from_skerryctl() {
    let tmp = tempfile::tempdir().unwrap();
    let (keys, repo, srv) = (
        tmp.path().join("k"),
        tmp.path().join("r"),
        tmp.path().join("srv"),
    );
    let img = tmp.path().join("img");
    image(&img, 1);
    ok(&keygen(&keys));
    ok(&init(&keys, &repo));
    ok(&add(&keys, &repo, "pi", "1.0.0", &img));
    // The server trusts the root it is given on disk, and holds the online timestamp key.
    std::fs::create_dir_all(srv.join("repository/metadata")).unwrap();
    std::fs::create_dir_all(srv.join("keys")).unwrap();
    std::fs::copy(
        repo.join("metadata/1.root.json"),
        srv.join("repository/metadata/1.root.json"),
    )
    .unwrap();
    std::fs::copy(keys.join("timestamp.key"), srv.join("keys/timestamp.key")).unwrap();
    let server = UpdateServer::start(&srv);
    let url = server.url();
    let token = srv.join("keys/operator.token");
    let conn = ["--server", url.as_str(), "--token-file", s(&token)];
    let push = |extra: &[&str]| -> (i32, String, String) {
        run(&[&["release", "push", "--repo", s(&repo)][..], &conn, extra].concat())
    };

    let (code, out, err) = push(&["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let pushed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        pushed["published"]["timestamp_signed_by"], "server",
        "{pushed}"
    );
    assert!(pushed["sent_files"].as_u64().unwrap() >= 5, "{pushed}");
    // Devices see it: the served pack is the local one, byte for byte.
    let local = skerry_release::Repository::new(&repo).current().unwrap();
    let pack = &local.targets.signed.targets["pi/1.0.0/image.pack"];
    let rel = skerry_tuf::image::consistent_path("pi/1.0.0/image.pack", &pack.hashes["sha256"]);
    assert_eq!(
        get(server.addr, &format!("/repository/targets/{rel}")),
        std::fs::read(repo.join("targets").join(&rel)).unwrap()
    );
    let fleet = |args: &[&str]| -> String { ok(&[&["fleet"][..], &conn, args].concat()) };
    let releases: Value = serde_json::from_str(&fleet(&["releases", "--output", "json"])).unwrap();
    assert_eq!(releases["releases"][0]["version"], "1.0.0", "{releases}");

    // A replay is a rollback; a flipped byte is caught; neither changes what is served.
    let served = tree(&srv.join("repository"));
    let (code, _, err) = push(&[]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("HTTP 409") && err.contains("versions only move forward"),
        "{err}"
    );
    image(&img, 2);
    ok(&add(&keys, &repo, "pi", "2.0.0", &img));
    let now = skerry_release::Repository::new(&repo).current().unwrap();
    let pack2 = &now.targets.signed.targets["pi/2.0.0/image.pack"];
    let rel2 = skerry_tuf::image::consistent_path("pi/2.0.0/image.pack", &pack2.hashes["sha256"]);
    let path2 = repo.join("targets").join(&rel2);
    let mut bytes = std::fs::read(&path2).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&path2, &bytes).unwrap();
    let (code, _, err) = push(&[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("HTTP 422") && err.contains("sha256"), "{err}");
    assert_eq!(
        tree(&srv.join("repository")),
        served,
        "a refused push changed the repository"
    );
    bytes[100] ^= 0x40;
    std::fs::write(&path2, &bytes).unwrap();
    // A push that broke off after its first file is resumed: that file is not resent.
    let token_text = std::fs::read_to_string(&token).unwrap();
    let auth = format!("Bearer {}", token_text.trim());
    let (st, created) = api(server.addr, "POST", "/api/v1/uploads", &auth, b"");
    assert_eq!(st, 201, "{created}");
    let upload = created["id"].as_str().unwrap().to_string();
    let ts = std::fs::read(repo.join("metadata/timestamp.json")).unwrap();
    let target = format!("/api/v1/uploads/{upload}/files/metadata/timestamp.json");
    assert_eq!(api(server.addr, "PUT", &target, &auth, &ts).0, 201);
    let (code, out, err) = push(&["--resume", &upload, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let pushed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pushed["already_there"], 1, "{pushed}");
    assert_eq!(pushed["upload"], upload.as_str(), "{pushed}");
    assert_eq!(
        pushed["published"]["new_targets"].as_array().unwrap().len(),
        2,
        "only 2.0.0's files are new: {pushed}"
    );

    // A rollout, paused, in all three forms.
    fleet(&[
        "rollouts",
        "create",
        "--id",
        "pi-2",
        "--board",
        "pi",
        "--version",
        "2.0.0",
        "--waves",
        "0:10%,1h:100%",
    ]);
    fleet(&["rollouts", "pause", "pi-2", "--note", "field report"]);
    let table = fleet(&["rollouts", "list"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("pi-2"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("2.0.0") && row.contains("paused") && row.contains("field report"),
        "{table}"
    );
    assert!(table.starts_with("ID "), "{table}");
    let json: Value =
        serde_json::from_str(&fleet(&["rollouts", "list", "--output", "json"])).unwrap();
    assert_eq!(json["rollouts"][0]["state"], "paused", "{json}");
    assert_eq!(
        json["rollouts"][0]["waves"].as_array().unwrap().len(),
        2,
        "{json}"
    );
    let yaml = fleet(&["rollouts", "list", "--output", "yaml"]);
    assert!(
        yaml.contains("state: paused") && yaml.contains("id: pi-2"),
        "{yaml}"
    );
    fleet(&["rollouts", "resume", "pi-2"]);
    let json: Value =
        serde_json::from_str(&fleet(&["rollouts", "list", "--output", "json"])).unwrap();
    assert_eq!(json["rollouts"][0]["state"], "active", "{json}");

    let missing = run(&[
        &["fleet"][..],
        &conn,
        &[
            "rollouts",
            "create",
            "--id",
            "x",
            "--board",
            "pi",
            "--version",
            "9.9.9",
        ],
    ]
    .concat());
    assert_eq!(missing.0, 4, "{}", missing.2);
    assert!(
        missing.2.contains("HTTP 422") && missing.2.contains("9.9.9"),
        "{}",
        missing.2
    );
    let devices = fleet(&["devices", "list"]);
    assert!(
        devices.starts_with("ID ") && devices.contains("LAST SEEN"),
        "{devices}"
    );

    // Join tokens: the secret once, listed by id only, revoked.
    let made: Value = serde_json::from_str(&fleet(&[
        "tokens",
        "create",
        "--uses",
        "2",
        "--ttl",
        "2h",
        "--label",
        "site=mine-7",
        "--output",
        "json",
    ]))
    .unwrap();
    let (id, secret) = (
        made["id"].as_str().unwrap(),
        made["token"].as_str().unwrap(),
    );
    assert!(secret.starts_with(&format!("{id}.")), "{made}");
    let list = fleet(&["tokens", "list"]);
    assert!(
        list.lines().any(|l| l.starts_with(id)
            && l.contains("active")
            && l.contains("0/2")
            && l.contains("site=mine-7")),
        "{list}"
    );
    assert!(!list.contains(secret), "the secret is never listed");
    fleet(&["tokens", "revoke", id]);
    assert!(fleet(&["tokens", "list"])
        .lines()
        .any(|l| l.starts_with(id) && l.contains("revoked")));

    // Refusals name what was wrong, with the server's status and message.
    let (code, _, err) = run(&[&["fleet"][..], &conn, &["devices", "revoke", "ghost"]].concat());
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("HTTP 404") && err.contains("ghost"), "{err}");
    let wrong = tmp.path().join("wrong.token");
    std::fs::write(&wrong, "0123456789abcdef0123456789abcdef0123").unwrap();
    let (code, _, err) = run(&[
        "fleet",
        "--server",
        &url,
        "--token-file",
        s(&wrong),
        "releases",
    ]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("operator token"),
        "{err}"
    );
    let (code, _, err) = run(&["fleet", "--token-file", s(&token), "releases"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--server URL"), "{err}");
    drop(server);
}
