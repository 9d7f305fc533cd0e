//! `release push` at the API: an upload made by the real release tooling is verified
//! against the served root and published (the server re-signs the timestamp over it);
//! tampered uploads — a flipped byte in a target, metadata signed by keys the root does
//! not name, a version rollback, a traversing path (in the request or in signed
//! metadata), oversized files — are refused and leave the served repository
//! byte-identical. Root rotation carried by the upload is followed.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;
use skerry_release::{AddImage, Expiries, KeySet, Repository};
use skerry_tuf::{Signed, Snapshot, Targets, Timestamp};
use support::*;

/// One request with a raw body; `target` goes out as written.
fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: &str,
    body: &[u8],
    extra: &str,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n{extra}\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
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

fn len(n: usize) -> String {
    format!("Content-Length: {n}\r\n")
}

struct Api {
    addr: SocketAddr,
    token: String,
}

impl Api {
    fn create(&self) -> String {
        let (st, v) = send(
            self.addr,
            "POST",
            "/api/v1/uploads",
            &self.token,
            b"",
            &len(0),
        );
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }
    fn put(&self, id: &str, rel: &str, bytes: &[u8]) -> (u16, Value) {
        let target = format!("/api/v1/uploads/{id}/files/{rel}");
        send(
            self.addr,
            "PUT",
            &target,
            &self.token,
            bytes,
            &len(bytes.len()),
        )
    }
    fn publish(&self, id: &str) -> (u16, Value) {
        send(
            self.addr,
            "POST",
            &format!("/api/v1/uploads/{id}/publish"),
            &self.token,
            b"",
            &len(0),
        )
    }
    /// Uploads `files` and publishes them.
    fn push(&self, files: &BTreeMap<String, Vec<u8>>) -> (u16, Value) {
        let id = self.create();
        for (rel, bytes) in files {
            let (st, v) = self.put(&id, rel, bytes);
            assert_eq!(st, 201, "{rel}: {v}");
        }
        self.publish(&id)
    }
}

/// Every file of a repository with its bytes (the lock file aside).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() != ".publish.lock" {
                out.insert(
                    e.path().strip_prefix(dir).unwrap().into(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

/// What a push sends: the local repository's current metadata and the targets the
/// server lacks.
fn upload_of(local: &Path, served: &Path) -> BTreeMap<String, Vec<u8>> {
    let cur = Repository::new(local).current().unwrap();
    let mut out = BTreeMap::new();
    let mut add = |rel: String| {
        out.insert(rel.clone(), std::fs::read(local.join(&rel)).unwrap());
    };
    let served_root = (1..)
        .take_while(|v| served.join(format!("metadata/{v}.root.json")).exists())
        .count() as u64;
    for v in served_root + 1..=cur.root.signed.version {
        add(format!("metadata/{v}.root.json"));
    }
    add(format!(
        "metadata/{}.targets.json",
        cur.targets.signed.version
    ));
    add(format!(
        "metadata/{}.snapshot.json",
        cur.snapshot.signed.version
    ));
    add("metadata/timestamp.json".into());
    for (name, tf) in &cur.targets.signed.targets {
        let rel = format!(
            "targets/{}",
            skerry_tuf::image::consistent_path(name, &tf.hashes["sha256"])
        );
        if !served.join(&rel).exists() {
            add(rel);
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn add_release(keys: &KeySet, repo: &Path, version: &str, scratch: &Path) {
    let image = scratch.join(format!("img-{version}"));
    let bytes: Vec<u8> = (0..300_000u32)
        .map(|n| (n.wrapping_mul(40503).wrapping_add(version.len() as u32) >> 7) as u8)
        .collect();
    std::fs::write(&image, bytes).unwrap();
    let add = AddImage {
        board: "pi",
        version,
        channel: "stable",
        image: &image,
        params: skerry_chunks::ChunkParams::DEFAULT,
        level: 3,
    };
    skerry_release::add_image(
        keys,
        &Repository::new(repo),
        &add,
        &Expiries::default(),
        SystemTime::now(),
    )
    .unwrap();
}

async fn server() -> (TestServer, Api) {
    let s = TestServer::start(
        |srv, keys| {
            publish(srv, keys, &[("1.0.0", "stable")], &Expiries::default());
            std::fs::create_dir_all(srv.join("keys")).unwrap();
            std::fs::copy(keys.join("timestamp.key"), srv.join("keys/timestamp.key")).unwrap();
        },
        |_| {},
    )
    .await;
    let token = std::fs::read_to_string(s.srv().join("keys/operator.token"))
        .unwrap()
        .trim()
        .to_string();
    let api = Api {
        addr: s.addr,
        token,
    };
    (s, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_release_is_published_and_the_server_signs_its_timestamp() {
    let (s, api) = server().await;
    let served = s.srv().join("repository");
    let local = s.data.path().join("local");
    copy_dir(&served, &local);
    let keys = KeySet::load(&s.keys).unwrap();
    add_release(&keys, &local, "2.0.0", s.data.path());
    let upload = upload_of(&local, &served);
    let uploaded_ts: Signed<Timestamp> =
        serde_json::from_slice(&upload["metadata/timestamp.json"]).unwrap();
    let (st, v) = tokio::task::spawn_blocking(move || api.push(&upload))
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["timestamp_signed_by"], "server");
    assert_eq!(v["new_targets"].as_array().unwrap().len(), 2, "{v}");
    // Devices now see it: the served timestamp (the server's) pins the new snapshot.
    let ts = get(s.addr, "/repository/metadata/timestamp.json", &[]);
    let ts: Signed<Timestamp> = serde_json::from_slice(&ts.body).unwrap();
    assert!(ts.signed.version > uploaded_ts.signed.version);
    assert_eq!(ts.signed.meta, uploaded_ts.signed.meta);
    let cur = Repository::new(&served).current().unwrap();
    assert!(cur
        .targets
        .signed
        .targets
        .contains_key("pi/2.0.0/image.pack"));
    assert!(
        !s.srv().join("uploads").read_dir().unwrap().any(|_| true),
        "the upload is gone"
    );
    s.stop().await;
}

/// Re-signs `targets` (changed by `edit`) with the tooling's keys, with snapshot and
/// timestamp over it, as a hostile but key-holding publisher could.
fn resign(
    keys: &KeySet,
    local: &Path,
    edit: impl FnOnce(&mut Targets),
) -> BTreeMap<String, Vec<u8>> {
    let cur = Repository::new(local).current().unwrap();
    let mut targets = cur.targets.signed.clone();
    edit(&mut targets);
    targets.version += 1;
    let t = Signed::sign(targets, &[&keys.targets])
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut snap: Snapshot = cur.snapshot.signed.clone();
    snap.version += 1;
    let meta = |version: u64, bytes: &[u8]| skerry_tuf::MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(
            [(
                "sha256".to_string(),
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
            )]
            .into(),
        ),
    };
    snap.meta.insert(
        "targets.json".into(),
        meta(cur.targets.signed.version + 1, &t),
    );
    let sn = Signed::sign(snap.clone(), &[&keys.snapshot])
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut ts: Timestamp = cur.timestamp.signed.clone();
    ts.version += 1;
    ts.meta
        .insert("snapshot.json".into(), meta(snap.version, &sn));
    let tsb = Signed::sign(ts, &[&keys.timestamp])
        .unwrap()
        .to_bytes()
        .unwrap();
    [
        (
            format!("metadata/{}.targets.json", cur.targets.signed.version + 1),
            t,
        ),
        (format!("metadata/{}.snapshot.json", snap.version), sn),
        ("metadata/timestamp.json".to_string(), tsb),
    ]
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_uploads_are_refused_and_the_repository_is_unchanged() {
    let (s, api) = server().await;
    let served = s.srv().join("repository");
    let keys = KeySet::load(&s.keys).unwrap();
    let local = s.data.path().join("local");
    copy_dir(&served, &local);
    add_release(&keys, &local, "2.0.0", s.data.path());
    let good = upload_of(&local, &served);
    let before = tree(&served);
    let api = std::sync::Arc::new(api);
    let refused = |files: BTreeMap<String, Vec<u8>>, status: u16, words: &'static str| {
        let api = std::sync::Arc::clone(&api);
        async move {
            let (st, v) = tokio::task::spawn_blocking(move || api.push(&files))
                .await
                .unwrap();
            assert_eq!(st, status, "{v}");
            assert!(v["error"].as_str().unwrap().contains(words), "{v}");
        }
    };

    // A flipped byte in the pack.
    let mut flipped = good.clone();
    let pack = flipped
        .keys()
        .find(|k| k.ends_with("image.pack"))
        .unwrap()
        .clone();
    flipped.get_mut(&pack).unwrap()[1000] ^= 1;
    refused(flipped, 422, "sha256").await;
    assert_eq!(tree(&served), before);

    // Metadata signed by keys the served root does not name.
    let other_dir = s.data.path().join("other-keys");
    let other = KeySet::generate(&other_dir, 1).unwrap();
    refused(
        resign(&other, &local, |_| {}),
        422,
        "does not chain to the server's root",
    )
    .await;
    assert_eq!(tree(&served), before);

    // A new root signed only by keys the served root does not name.
    let served_root: Signed<skerry_tuf::Root> =
        serde_json::from_slice(&std::fs::read(served.join("metadata/1.root.json")).unwrap())
            .unwrap();
    let mut forged = served_root.signed.clone();
    forged.version = 2;
    let ids = |k: &skerry_tuf::SecretKey| k.key_id().unwrap();
    forged.keys = [
        &other.root[0],
        &other.targets,
        &other.snapshot,
        &other.timestamp,
    ]
    .iter()
    .map(|k| (ids(k), k.public()))
    .collect();
    for (role, key) in [
        ("root", &other.root[0]),
        ("targets", &other.targets),
        ("snapshot", &other.snapshot),
        ("timestamp", &other.timestamp),
    ] {
        forged.roles.insert(
            role.into(),
            skerry_tuf::RoleKeys {
                keyids: vec![ids(key)],
                threshold: 1,
            },
        );
    }
    let mut files = resign(&other, &local, |_| {});
    files.insert(
        "metadata/2.root.json".into(),
        Signed::sign(forged, &[&other.root[0]])
            .unwrap()
            .to_bytes()
            .unwrap(),
    );
    refused(files, 422, "metadata/2.root.json").await;
    assert_eq!(tree(&served), before);

    // A target whose signed name walks out of targets/ (signed with the real keys).
    let evil = resign(&keys, &local, |t| {
        let any = t.targets.values().next().unwrap().clone();
        t.targets.insert("../../keys/evil".into(), any);
    });
    refused(evil, 422, "../../keys/evil").await;
    assert_eq!(tree(&served), before);

    // A traversing upload path, and oversized files: refused at once.
    let id = api.create();
    let (st, v) = api.put(&id, "targets/../../keys/x", b"x");
    assert_eq!(st, 400, "{v}");
    let (st, v) = api.put(&id, "metadata/timestamp.json", &vec![b' '; 70 * 1024]);
    assert_eq!(st, 413, "{v}");
    let target = format!("/api/v1/uploads/{id}/files/targets/pi/big.pack");
    let (st, v) = send(
        api.addr,
        "PUT",
        &target,
        &api.token,
        b"",
        "Content-Length: 9663676416\r\n",
    );
    assert_eq!(st, 413, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("over its limit"),
        "{v}"
    );
    // Without a declared length the bound holds as the body streams in.
    let chunk = vec![b' '; 8192];
    let mut chunked = Vec::new();
    for _ in 0..9 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let target = format!("/api/v1/uploads/{id}/files/metadata/timestamp.json");
    let (st, v) = send(
        api.addr,
        "PUT",
        &target,
        &api.token,
        &chunked,
        "Transfer-Encoding: chunked\r\n",
    );
    assert_eq!(st, 413, "{v}");
    assert_eq!(
        send(
            api.addr,
            "DELETE",
            &format!("/api/v1/uploads/{id}"),
            &api.token,
            b"",
            &len(0)
        )
        .0,
        200
    );

    // The good upload goes through; replaying it (or the older one) is a rollback.
    let (st, v) = {
        let api = std::sync::Arc::clone(&api);
        let g = good.clone();
        tokio::task::spawn_blocking(move || api.push(&g))
            .await
            .unwrap()
    };
    assert_eq!(st, 200, "{v}");
    let after_good = tree(&served);
    refused(good, 409, "versions only move forward").await;
    assert_eq!(tree(&served), after_good);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_carrying_a_rotated_root_is_followed() {
    let (s, api) = server().await;
    let served = s.srv().join("repository");
    let keys = KeySet::load(&s.keys).unwrap();
    let local = s.data.path().join("local");
    copy_dir(&served, &local);
    let new_dir = s.data.path().join("keys-2");
    let new_keys = KeySet::generate(&new_dir, 1).unwrap();
    skerry_release::rotate_root(
        &keys,
        &new_keys,
        &Repository::new(&local),
        1,
        &Expiries::default(),
        SystemTime::now(),
    )
    .unwrap();
    add_release(&new_keys, &local, "2.0.0", s.data.path());
    let upload = upload_of(&local, &served);
    assert!(upload.contains_key("metadata/2.root.json"));
    let (st, v) = tokio::task::spawn_blocking(move || api.push(&upload))
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["root_version"], 2);
    // The server's key is no longer the root's timestamp key: the upload's own is served.
    assert_eq!(v["timestamp_signed_by"], "upload");
    assert!(served.join("metadata/2.root.json").exists());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_off_upload_keeps_whole_files_only_and_an_abort_changes_nothing() {
    let (s, api) = server().await;
    let served = s.srv().join("repository");
    let before = tree(&served);
    let addr = api.addr;
    let token = api.token.clone();
    let id = tokio::task::spawn_blocking(move || {
        let id = api.create();
        assert_eq!(api.put(&id, "targets/pi/9.0.0/whole.pack", b"whole").0, 201);
        // Half a body, then the connection closes.
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "PUT /api/v1/uploads/{id}/files/targets/pi/9.0.0/half.pack HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 100000\r\n\r\n"
        )
        .unwrap();
        stream.write_all(&[7u8; 40_000]).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{answer}");
        // The server may still be reading the broken request (the upload is busy).
        let (mut st, mut v) = (0, Value::Null);
        for _ in 0..200 {
            (st, v) = send(addr, "GET", &format!("/api/v1/uploads/{id}"), &token, b"", &len(0));
            if st != 409 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert_eq!(st, 200, "{v}");
        let paths: Vec<&str> = v["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["targets/pi/9.0.0/whole.pack"], "{v}");
        assert_eq!(v["served"]["root"], 1, "{v}");
        let (st, v) = send(addr, "DELETE", &format!("/api/v1/uploads/{id}"), &token, b"", &len(0));
        assert_eq!(st, 200, "{v}");
        let (st, _) = send(addr, "GET", &format!("/api/v1/uploads/{id}"), &token, b"", &len(0));
        assert_eq!(st, 404);
        id
    })
    .await
    .unwrap();
    assert!(!s.srv().join("uploads").join(id).exists());
    assert_eq!(tree(&served), before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_uploads_are_bounded_and_a_stale_one_makes_room() {
    let (s, api) = server().await;
    let uploads = s.srv().join("uploads");
    tokio::task::spawn_blocking(move || {
        let ids: Vec<String> = (0..8).map(|_| api.create()).collect();
        let (st, v) = send(
            api.addr,
            "POST",
            "/api/v1/uploads",
            &api.token,
            b"",
            &len(0),
        );
        assert_eq!(st, 429, "{v}");
        assert!(v["error"].as_str().unwrap().contains("at most 8"), "{v}");
        // A day-old upload is removed when the next one starts.
        let old = SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        std::fs::File::open(uploads.join(&ids[3]))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let _ninth = api.create();
        assert!(!uploads.join(&ids[3]).exists());
        assert!(uploads.join(&ids[4]).exists());
    })
    .await
    .unwrap();
    s.stop().await;
}
