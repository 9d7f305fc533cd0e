//! An action's `deploymentBase` and its artifact: the release's `.swu` with its
//! hashes, and its download (one byte range at most).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Response, StatusCode};
use md5::Md5;
use serde_json::json;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use skerry_fleet_store::{DdiTarget, StoreError};
use tonic::body::Body;

use super::{hex, json_response, text, DdiApi};

/// The `.swu` of a release, and what DDI says about it.
pub(super) struct Artifact {
    path: PathBuf,
    filename: String,
    size: u64,
    sha1: String,
    md5: String,
    sha256: String,
}

pub(super) fn artifact(dir: &Path, board: &str, version: &str) -> std::io::Result<Artifact> {
    let filename = format!("{version}.swu");
    let path = dir.join(board).join(&filename);
    let data = std::fs::read(&path)?;
    Ok(Artifact {
        size: data.len() as u64,
        sha1: hex(&Sha1::digest(&data)),
        md5: hex(&Md5::digest(&data)),
        sha256: hex(&Sha256::digest(&data)),
        path,
        filename,
    })
}

impl DdiApi {
    pub(super) fn deployment(
        &self,
        target: &DdiTarget,
        id: u64,
        base: &str,
    ) -> Result<Response<Body>, StoreError> {
        let Some(a) = self.store.ddi_action(&target.device, id)? else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("no action {id} for this target"),
            ));
        };
        let Ok(art) = artifact(&self.swu_dir, &target.board, &a.version.to_string()) else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("the .swu of {} is gone", a.version),
            ));
        };
        let href = format!("{base}/softwaremodules/{id}/artifacts/{}", art.filename);
        Ok(json_response(&json!({
            "id": id.to_string(),
            "deployment": {
                "download": "forced",
                "update": "forced",
                "chunks": [{
                    "part": "os",
                    "name": target.board,
                    "version": a.version.to_string(),
                    "artifacts": [{
                        "filename": art.filename,
                        "hashes": {"sha1": art.sha1, "md5": art.md5, "sha256": art.sha256},
                        "size": art.size,
                        "_links": {"download-http": {"href": href}, "download": {"href": href}},
                    }],
                }],
            },
        })))
    }

    pub(super) fn download(
        &self,
        target: &DdiTarget,
        id: u64,
        name: &str,
        head: &http::request::Parts,
    ) -> Result<Response<Body>, StoreError> {
        let Some(a) = self.store.ddi_action(&target.device, id)? else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("no action {id} for this target"),
            ));
        };
        let Ok(art) = artifact(&self.swu_dir, &target.board, &a.version.to_string()) else {
            return Ok(text(StatusCode::NOT_FOUND, "no such artifact"));
        };
        if art.filename != name {
            return Ok(text(StatusCode::NOT_FOUND, "no such artifact"));
        }
        let data = match std::fs::read(&art.path) {
            Ok(d) => d,
            Err(_) => return Ok(text(StatusCode::NOT_FOUND, "no such artifact")),
        };
        let len = data.len() as u64;
        let range = head
            .headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| parse_range(r, len));
        let (status, start, end) = match range {
            Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
            Some(Err(())) => {
                let mut r = text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "the range starts past the end",
                );
                r.headers_mut().insert(
                    http::header::CONTENT_RANGE,
                    http::HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
                );
                return Ok(r);
            }
            None => (StatusCode::OK, 0, len),
        };
        let mut r = Response::new(Body::new(http_body_util::Full::new(
            Bytes::copy_from_slice(&data[start as usize..end as usize]),
        )));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(
            http::header::ACCEPT_RANGES,
            http::HeaderValue::from_static("bytes"),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            h.insert(
                http::header::CONTENT_RANGE,
                http::HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1))
                    .expect("ascii"),
            );
        }
        Ok(r)
    }
}

/// One `bytes=` range: `Some(Ok((start, end_exclusive)))`, `Some(Err(()))` when it starts
/// past the end, `None` for none or one we ignore (several, malformed).
fn parse_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len)
        }
        (s, "") => (s.parse().ok()?, len),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().ok()?, e.parse().ok()?);
            if e < s {
                return None;
            }
            (s, (e + 1).min(len))
        }
    };
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}
