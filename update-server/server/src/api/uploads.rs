//! `skerryctl release push` over the API: an upload is created, its files streamed in
//! one by one (a client that broke off lists what arrived whole and sends the rest),
//! then published, which verifies everything against the served root first
//! ([`super::publish`]), or aborted.
//!
//! ```text
//! POST   uploads                    → 201 {"id", "served": {root, timestamp, snapshot, targets}}
//! GET    uploads/ID                 → {"id", "served", "files": [{"path", "length"}]}
//! PUT    uploads/ID/files/<path>    → 201 {"path", "length", "sha256"}   (body streamed)
//! POST   uploads/ID/publish         → {"root_version", "targets_version", …}
//! DELETE uploads/ID                 → {"id", "done": "aborted"}
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use http::{Method, StatusCode};
use serde_json::{json, Value};
use tonic::body::Body;

use super::publish::{self, OnlineTimestamp, PublishError};
use super::staged::StageError;
use super::{ApiError, OperatorApi};
use crate::timestamp::{chain, lock_repository, ResignPolicy};

/// Where the upload routes start, after [`super::API_PREFIX`].
pub const UPLOADS: &str = "uploads";

impl From<StageError> for ApiError {
    fn from(e: StageError) -> Self {
        ApiError(e.status, e.message)
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        ApiError(e.status(), chain(&e))
    }
}

fn not_found(method: &Method, path: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no route {method} {path}"))
}

/// Answers one upload request; the body is read only by `PUT …/files/…`, streamed.
pub async fn handle(
    api: Arc<OperatorApi>,
    head: http::request::Parts,
    body: Body,
) -> Result<(StatusCode, Value), ApiError> {
    let full = head.uri.path().to_string();
    let rest = full.strip_prefix(super::API_PREFIX).unwrap_or("");
    let mut parts = rest.splitn(4, '/');
    let (_, id, action, file) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (&head.method, id, action, file) {
        (&Method::POST, None, None, None) => {
            let id = api.uploads.create(SystemTime::now())?;
            let served = served_versions(&api)?;
            Ok((StatusCode::CREATED, json!({"id": id, "served": served})))
        }
        (&Method::GET, Some(id), None, None) => {
            let busy = api.uploads.take(id)?;
            let files: Vec<Value> = api
                .uploads
                .inventory(&busy)?
                .iter()
                .map(|(p, f)| json!({"path": p, "length": f.length}))
                .collect();
            let served = served_versions(&api)?;
            Ok((
                StatusCode::OK,
                json!({"id": id, "served": served, "files": files}),
            ))
        }
        (&Method::DELETE, Some(id), None, None) => {
            let busy = api.uploads.take(id)?;
            api.uploads.remove(&busy)?;
            Ok((StatusCode::OK, json!({"id": id, "done": "aborted"})))
        }
        (&Method::PUT, Some(id), Some("files"), Some(path)) => {
            let busy = api.uploads.take(id)?;
            let declared = head
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let (length, sha) = api.uploads.put(&busy, path, declared, body).await?;
            Ok((
                StatusCode::CREATED,
                json!({"path": path, "length": length, "sha256": hex::encode(sha)}),
            ))
        }
        (&Method::POST, Some(id), Some("publish"), None) => {
            let id = id.to_string();
            let worker = Arc::clone(&api);
            tokio::task::spawn_blocking(move || worker.publish_upload(&id))
                .await
                .map_err(|e| {
                    ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("the publishing task failed: {e}"),
                    )
                })?
        }
        _ => Err(not_found(&head.method, &full)),
    }
}

/// What the server serves now, so the client sends only newer roots (null: no root).
fn served_versions(api: &OperatorApi) -> Result<Value, ApiError> {
    match publish::served(&api.repository) {
        Ok((_, v)) => Ok(
            json!({"root": v.root, "timestamp": v.timestamp, "snapshot": v.snapshot, "targets": v.targets}),
        ),
        Err(PublishError::NoTrustedRoot) => Ok(Value::Null),
        Err(e) => Err(e.into()),
    }
}

impl OperatorApi {
    fn publish_upload(&self, id: &str) -> Result<(StatusCode, Value), ApiError> {
        let busy = self.uploads.take(id)?;
        let files = self.uploads.inventory(&busy)?;
        let _lock = lock_repository(&self.repository).map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("locking {}: {e}", self.repository.display()),
            )
        })?;
        let online = self.timestamp_key.as_ref().map(|key| OnlineTimestamp {
            key,
            validity: ResignPolicy::default().validity,
        });
        let done = publish::verify_and_publish(
            &self.repository,
            &files,
            online.as_ref(),
            SystemTime::now(),
        )?;
        // Published: what is left staged (targets already served) goes with the upload.
        self.uploads.remove(&busy)?;
        Ok((
            StatusCode::OK,
            json!({
                "root_version": done.root_version,
                "targets_version": done.targets_version,
                "snapshot_version": done.snapshot_version,
                "timestamp_version": done.timestamp_version,
                "timestamp_signed_by": if done.server_signed { "server" } else { "upload" },
                "new_targets": done.new_targets,
            }),
        ))
    }
}
