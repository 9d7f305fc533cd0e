//! ResourceGet, ResourceList, ResourceWatch: the runtime's resources, read through a
//! [`ClientView`] with the caller's role, so a sensitive type is refused below
//! os:admin wherever it is read (and checked again on every watch event).
//!
//! Only types the state holds are answered; any other is NOT_FOUND naming it (and
//! the namespace it lives in when only the namespace was wrong). Checking first also
//! keeps a client from making the state track kinds no controller has.

use futures_util::stream;
use skerry_api::pb;
use skerry_runtime::{
    AccessError, ClientView, Phase, RawResource, Selector, State, StateError, WatchError,
    WatchEvent, Watcher,
};
use skerryd_core::Answers;
use tonic::Status;

use super::limits::{quoted, required, MAX_NAMESPACE_BYTES, MAX_RESOURCE_ID_BYTES, MAX_TYPE_BYTES};

/// Reads on behalf of one caller.
pub struct Reader {
    state: State,
    view: ClientView,
    role: skerry_api::Role,
}

impl Reader {
    /// A reader of `state` for a caller with `role`.
    pub fn new(state: &State, role: skerry_api::Role) -> Self {
        Reader {
            state: state.clone(),
            view: ClientView::new(state.clone(), super::runtime_role(role)),
            role,
        }
    }

    /// ResourceGet.
    pub fn get(&self, request: &pb::ResourceGetRequest) -> Result<pb::ResourceGetResponse, Status> {
        let Some(r) = &request.r#ref else {
            return Err(Status::invalid_argument(
                "ref is missing: ResourceGet needs ref.namespace, ref.type and ref.id",
            ));
        };
        self.kind("ref.namespace", &r.namespace, "ref.type", &r.r#type)?;
        required("ref.id", &r.id, MAX_RESOURCE_ID_BYTES)?;
        let raw = self
            .view
            .get(&r.namespace, &r.r#type, &r.id)
            .map_err(|e| self.refusal(&r.r#type, e))?;
        Ok(pb::ResourceGetResponse {
            resource: Some(self.to_wire(&raw)?),
        })
    }

    /// ResourceList.
    pub fn list(
        &self,
        request: &pb::ResourceListRequest,
    ) -> Result<pb::ResourceListResponse, Status> {
        self.kind("namespace", &request.namespace, "type", &request.r#type)?;
        let found = self
            .view
            .list(&request.namespace, &request.r#type, &Selector::all())
            .map_err(|e| self.refusal(&request.r#type, e))?;
        let resources = found
            .iter()
            .map(|raw| self.to_wire(raw))
            .collect::<Result<_, _>>()?;
        Ok(pb::ResourceListResponse { resources })
    }

    /// ResourceWatch: with `bootstrap`, the current resources as CREATED first; then
    /// BOOTSTRAPPED (always, so the client knows the watch is live); then every change.
    pub fn watch(
        self,
        request: &pb::ResourceWatchRequest,
    ) -> Result<Answers<pb::ResourceWatchEvent>, Status> {
        self.kind("namespace", &request.namespace, "type", &request.r#type)?;
        let watcher = if request.id.is_empty() {
            self.view.watch(&request.namespace, &request.r#type, None)
        } else {
            required("id", &request.id, MAX_RESOURCE_ID_BYTES)?;
            self.view
                .watch_resource(&request.namespace, &request.r#type, &request.id)
        }
        .map_err(|e| self.refusal(&request.r#type, e))?;
        let watch = Watch {
            reader: self,
            type_name: request.r#type.clone(),
            watcher,
            bootstrap: request.bootstrap,
            snapshot_done: false,
            ended: false,
        };
        Ok(Box::pin(stream::unfold(watch, Watch::next)))
    }

    /// Checks the namespace and type fields and that the state holds that kind.
    fn kind(
        &self,
        namespace_field: &str,
        namespace: &str,
        type_field: &str,
        type_name: &str,
    ) -> Result<(), Status> {
        required(namespace_field, namespace, MAX_NAMESPACE_BYTES)?;
        required(type_field, type_name, MAX_TYPE_BYTES)?;
        let kinds = self.state.kinds();
        if kinds
            .iter()
            .any(|(n, t, _)| n == namespace && t == type_name)
        {
            return Ok(());
        }
        let elsewhere: Vec<&str> = kinds
            .iter()
            .filter(|(_, t, _)| t == type_name)
            .map(|(n, _, _)| n.as_str())
            .collect();
        Err(if elsewhere.is_empty() {
            Status::not_found(format!(
                "resource type {} is unknown to this machine (Dependencies lists the types its controllers read and write)",
                quoted(type_name)
            ))
        } else {
            Status::not_found(format!(
                "resource type {type_name} is not in namespace {}; it is in {}",
                quoted(namespace),
                elsewhere.join(", ")
            ))
        })
    }

    fn refusal(&self, type_name: &str, error: AccessError) -> Status {
        match error {
            AccessError::Forbidden { .. } | AccessError::Watch {
                source: WatchError::Forbidden { .. },
                ..
            } => Status::permission_denied(format!(
                "resource type {type_name} is sensitive: only os:admin may read it; the client certificate names {}",
                self.role
            )),
            AccessError::State(StateError::NotFound { key }) => {
                Status::not_found(format!("resource {key} does not exist"))
            }
            AccessError::Watch { source, .. } => watch_status(type_name, &source),
            other => Status::internal(format!("reading {type_name} failed: {other}")),
        }
    }

    fn to_wire(&self, raw: &RawResource) -> Result<pb::Resource, Status> {
        let m = &raw.metadata;
        let spec = self
            .view
            .spec_json(raw)
            .map_err(|e| self.refusal(&m.type_name, e))?;
        Ok(pb::Resource {
            r#ref: Some(pb::ResourceRef {
                namespace: m.namespace.to_string(),
                r#type: m.type_name.to_string(),
                id: m.id.to_string(),
            }),
            version: m.version.0,
            owner: m.owner.as_deref().unwrap_or_default().to_owned(),
            phase: match m.phase {
                Phase::Running => pb::ResourcePhase::Running,
                Phase::TearingDown => pb::ResourcePhase::TearingDown,
            }
            .into(),
            finalizers: m.finalizers.clone(),
            created: Some(m.created.into()),
            updated: Some(m.updated.into()),
            spec_yaml: skerry_config::yaml::emit::render(&spec),
        })
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn watch_status(type_name: &str, error: &WatchError) -> Status {
    match error {
        WatchError::Forbidden { .. } => Status::permission_denied(format!(
            "resource type {type_name} is sensitive: only os:admin may read it"
        )),
        WatchError::Closed => Status::unavailable(format!(
            "the watch of {type_name} ended: the daemon's state is closing"
        )),
        other => Status::aborted(format!(
            "the watch of {type_name} fell behind and cannot resume ({other}); watch again"
        )),
    }
}

struct Watch {
    reader: Reader,
    type_name: String,
    watcher: Watcher,
    bootstrap: bool,
    snapshot_done: bool,
    ended: bool,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<pb::ResourceWatchEvent, Status>, Watch)> {
        loop {
            if self.ended {
                return None;
            }
            let event = match self.watcher.next().await {
                Ok(event) => event,
                Err(e) => {
                    self.ended = true;
                    let status = self.reader.refusal(
                        &self.type_name,
                        AccessError::Watch {
                            type_name: self.type_name.clone(),
                            source: e,
                        },
                    );
                    return Some((Err(status), self));
                }
            };
            let (kind, resource) = match &event {
                WatchEvent::Bootstrapped { .. } => {
                    self.snapshot_done = true;
                    (pb::ResourceEventKind::Bootstrapped, None)
                }
                WatchEvent::Created { .. } if !self.snapshot_done && !self.bootstrap => continue,
                WatchEvent::Created { resource, .. } => {
                    (pb::ResourceEventKind::Created, Some(resource))
                }
                WatchEvent::Updated { resource, .. } => {
                    (pb::ResourceEventKind::Updated, Some(resource))
                }
                WatchEvent::Destroyed { resource, .. } => {
                    (pb::ResourceEventKind::Destroyed, Some(resource))
                }
            };
            let resource = match resource.map(|r| self.reader.to_wire(r)).transpose() {
                Ok(resource) => resource,
                Err(status) => {
                    self.ended = true;
                    return Some((Err(status), self));
                }
            };
            let answer = pb::ResourceWatchEvent {
                kind: kind.into(),
                resource,
            };
            return Some((Ok(answer), self));
        }
    }
}
