//! `skerryctl release push`: uploads what `release add` (or `rotate-root`) signed to
//! the update server, which verifies it against the root it already trusts and
//! publishes it atomically (update-server/README.md, "Pushing a release").
//!
//! Sent: the roots newer than the server's, the current timestamp, snapshot and targets
//! metadata, and every target file the server does not serve yet. Files stream from
//! disk. If the transfer breaks off, `--resume ID` sends only what did not arrive whole.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use skerry_release::Repository;

use crate::fleet::http::{Server, ServerArgs, ServerRefused};
use crate::output::{emit, Done, Output};

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The repository directory `release add` wrote (metadata/ and targets/).
    #[arg(long)]
    pub repo: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Continue an upload that broke off (the id the failed push printed).
    #[arg(long)]
    pub resume: Option<String>,
}

#[derive(Debug, Serialize)]
struct Pushed {
    upload: String,
    sent_files: usize,
    sent_bytes: u64,
    already_there: usize,
    published: Value,
}

/// One file to send: its repository path and where it is here.
struct Outgoing {
    rel: String,
    local: PathBuf,
    length: u64,
}

pub fn run(args: PushArgs, output: Output) -> anyhow::Result<()> {
    let server = Server::connect(&args.server)?;
    let repo = Repository::new(&args.repo);
    let current = repo
        .current()
        .with_context(|| format!("reading the repository {}", args.repo.display()))?;
    let (upload, served_root, arrived) = match &args.resume {
        Some(id) => {
            let listing = server.call("GET", &format!("uploads/{id}"), None)?;
            let arrived: Vec<(String, u64)> = listing["files"]
                .as_array()
                .map(|files| {
                    files
                        .iter()
                        .filter_map(|f| {
                            Some((f["path"].as_str()?.to_string(), f["length"].as_u64()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (id.clone(), listing["served"]["root"].as_u64(), arrived)
        }
        None => {
            let created = server.call("POST", "uploads", None)?;
            let id = created["id"]
                .as_str()
                .context("the server gave no upload id")?
                .to_string();
            (id, created["served"]["root"].as_u64(), Vec::new())
        }
    };
    let Some(served_root) = served_root else {
        let _ = server.call("DELETE", &format!("uploads/{upload}"), None);
        anyhow::bail!(
            "the server at {} trusts no root yet: copy {} to DIR/repository/metadata/ on the server first (the trust anchor is never sent over the network)",
            server.base(),
            args.repo.join("metadata/1.root.json").display()
        );
    };
    let outgoing = files_to_send(&server, &args.repo, &current, served_root)?;
    let mut sent_files = 0;
    let mut sent_bytes = 0;
    let mut already_there = 0;
    for f in &outgoing {
        if arrived.iter().any(|(p, l)| *p == f.rel && *l == f.length) {
            already_there += 1;
            continue;
        }
        server
            .put_file(&format!("uploads/{upload}/files/{}", f.rel), &f.local)
            .with_context(|| {
                format!(
                    "sending {} (resume with: skerryctl release push --repo {} --resume {upload})",
                    f.rel,
                    args.repo.display()
                )
            })?;
        sent_files += 1;
        sent_bytes += f.length;
    }
    let published = match server.call("POST", &format!("uploads/{upload}/publish"), None) {
        Ok(p) => p,
        Err(e) => {
            // A refused release is not left lying on the server.
            if e.downcast_ref::<ServerRefused>().is_some() {
                let _ = server.call("DELETE", &format!("uploads/{upload}"), None);
            }
            return Err(e.context("publishing the upload"));
        }
    };
    let words = format!(
        "published targets version {} (snapshot {}, timestamp {} signed by the {}) to {}: {sent_files} files, {sent_bytes} bytes sent",
        published["targets_version"],
        published["snapshot_version"],
        published["timestamp_version"],
        published["timestamp_signed_by"].as_str().unwrap_or("?"),
        server.base()
    );
    emit(
        output,
        &Done {
            words,
            fields: Pushed {
                upload,
                sent_files,
                sent_bytes,
                already_there,
                published,
            },
        },
    )
}

fn files_to_send(
    server: &Server,
    dir: &Path,
    current: &skerry_release::repo::Current,
    served_root: u64,
) -> anyhow::Result<Vec<Outgoing>> {
    let mut out = Vec::new();
    let mut add = |rel: String| -> anyhow::Result<()> {
        let local = dir.join(&rel);
        let length = std::fs::metadata(&local)
            .with_context(|| format!("reading {}", local.display()))?
            .len();
        out.push(Outgoing { rel, local, length });
        Ok(())
    };
    for v in served_root + 1..=current.root.signed.version {
        add(format!("metadata/{v}.root.json"))?;
    }
    add(format!(
        "metadata/{}.targets.json",
        current.targets.signed.version
    ))?;
    add(format!(
        "metadata/{}.snapshot.json",
        current.snapshot.signed.version
    ))?;
    add("metadata/timestamp.json".into())?;
    for (name, tf) in &current.targets.signed.targets {
        let sha = tf
            .hashes
            .get("sha256")
            .with_context(|| format!("target {name} has no sha256 in {}", dir.display()))?;
        let rel = format!("targets/{}", skerry_tuf::image::consistent_path(name, sha));
        // Content-addressed: a file the server serves at the same length is the same.
        if server.head_public(&format!("repository/{rel}"))? == Some(tf.length) {
            continue;
        }
        add(rel)?;
    }
    Ok(out)
}
