//! Interop: python-tuf's `ngclient` (an independent TUF implementation) refreshes our
//! repository — through a root rotation, with a root threshold of 2 — and downloads
//! every target, checking signatures, key ids, versions, lengths and hashes itself.
//! Install python-tuf with `scripts/deps/release.sh`.

mod support {
    pub mod cli;
    pub mod maintenance;
    pub mod release;
}

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::ok;
use support::maintenance::{rotate_root, timestamp};
use support::release::{add, init, keygen};

const CLIENT: &str = r#"
import sys, os, json, hashlib, tempfile, threading, functools, http.server
from tuf.ngclient import Updater
repo = os.path.abspath(sys.argv[1])
root = open(sys.argv[2], "rb").read()
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=repo)
handler.log_message = lambda *a: None
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
base = "http://127.0.0.1:%d" % srv.server_address[1]
work = tempfile.mkdtemp()
md, td = os.path.join(work, "md"), os.path.join(work, "t")
os.makedirs(md); os.makedirs(td)
out = {}
try:
    u = Updater(md, base + "/metadata/", td, base + "/targets/", bootstrap=root)
    u.refresh()
    out["root_version"] = u._trusted_set.root.version
    out["targets"] = {}
    for name in sys.argv[3:]:
        info = u.get_targetinfo(name)
        if info is None:
            raise SystemExit("no target " + name)
        path = u.download_target(info)
        out["targets"][name] = hashlib.sha256(open(path, "rb").read()).hexdigest()
finally:
    srv.shutdown()
print(json.dumps(out))
"#;

/// A python that has `tuf.ngclient`, or a failure naming what to install.
fn python_with_tuf() -> PathBuf {
    let candidates = [
        std::env::var("SKERRY_TUF_PYTHON").unwrap_or_default(),
        "/opt/skerry/tuf-venv/bin/python3".into(),
        "python3".into(),
    ];
    for py in candidates.iter().filter(|p| !p.is_empty()) {
        let ok = Command::new(py)
            .args(["-c", "import tuf.ngclient"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return py.into();
        }
    }
    panic!("python-tuf is not installed: run scripts/deps/release.sh (pip install tuf)");
}

fn run_client(
    py: &Path,
    dir: &Path,
    repo: &Path,
    root: &Path,
    targets: &[&str],
) -> std::process::Output {
    let script = dir.join("client.py");
    std::fs::write(&script, CLIENT).unwrap();
    Command::new(py)
        .arg(&script)
        .arg(repo)
        .arg(root)
        .args(targets)
        .output()
        .unwrap()
}

#[test]
fn python_tuf_refreshes_and_downloads_every_target() {
    let py = python_with_tuf();
    let tmp = tempfile::tempdir().unwrap();
    let (keys, keys2, repo) = (
        tmp.path().join("keys"),
        tmp.path().join("keys2"),
        tmp.path().join("repo"),
    );
    ok(&[&keygen(&keys)[..], &["--root-keys", "2"]].concat());
    ok(&[&init(&keys, &repo)[..], &["--threshold", "2"]].concat());
    let img = tmp.path().join("img");
    std::fs::write(
        &img,
        (0..300_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    ok(&add(&keys, &repo, "rpi4", "1.0.0", &img));
    ok(&keygen(&keys2));
    ok(&rotate_root(&keys, &keys2, &repo));
    std::fs::write(
        &img,
        (0..200_000u32)
            .map(|i| (i * 13 % 241) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    ok(&add(&keys2, &repo, "x86", "2.0.0", &img));
    ok(&timestamp(&keys2, &repo));

    let targets = [
        "rpi4/1.0.0/image.idx",
        "rpi4/1.0.0/image.pack",
        "x86/2.0.0/image.idx",
        "x86/2.0.0/image.pack",
    ];
    let root1 = repo.join("metadata/1.root.json");
    let out = run_client(&py, tmp.path(), &repo, &root1, &targets);
    assert!(
        out.status.success(),
        "python-tuf refused the repository: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["root_version"], 2,
        "python-tuf did not follow the root rotation"
    );
    // Each download's sha256 is the content address it was stored under.
    for name in targets {
        let got = report["targets"][name].as_str().unwrap();
        let (dir, file) = name.rsplit_once('/').unwrap();
        assert!(
            repo.join("targets")
                .join(dir)
                .join(format!("{got}.{file}"))
                .exists(),
            "{name}"
        );
    }

    // And it refuses a tampered target.
    let pack = std::fs::read_dir(repo.join("targets/x86/2.0.0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".image.pack"))
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    let out = run_client(&py, tmp.path(), &repo, &root1, &["x86/2.0.0/image.pack"]);
    assert!(!out.status.success(), "python-tuf accepted a tampered pack");
}
