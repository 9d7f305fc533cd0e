//! Reading the state on behalf of an API client with a role: sensitive types are for
//! admins only. Controllers read through their [`ReconcileContext`](crate::ReconcileContext)
//! instead, which checks their declared inputs.
//!
//! Every check happens where the data is read: `get` and `list` under the kind's lock,
//! watches on every event they hand out.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{AccessError, StateError, WatchError};
use crate::resource::{RawResource, ResourceKey, Selector};
use crate::state::{forbids, Bookmark, State, Watcher};

/// The role an API client's certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Everything.
    Admin,
    /// Operate the machine; no secrets.
    Operator,
    /// Read-only; no secrets.
    Reader,
}

/// The state as one client may see it.
#[derive(Debug, Clone)]
pub struct ClientView {
    state: State,
    role: Role,
}

impl ClientView {
    /// A view of `state` for a client with `role`.
    pub fn new(state: State, role: Role) -> Self {
        ClientView { state, role }
    }

    fn forbidden(&self, type_name: &str) -> AccessError {
        AccessError::Forbidden {
            role: self.role,
            type_name: type_name.to_owned(),
        }
    }

    /// Reads one resource. The role is checked under the same lock as the read, so a
    /// sensitive type that registers in between cannot slip through.
    pub fn get(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
    ) -> Result<Arc<RawResource>, AccessError> {
        self.state.read_kind(namespace, type_name, |kind| {
            // A type never seen has no resources to leak; an unknown type seen only
            // from disk keeps the sensitivity it was stored with.
            if kind.is_some_and(|kind| forbids(self.role, kind)) {
                return Err(self.forbidden(type_name));
            }
            kind.and_then(|kind| kind.resources.get(id).cloned())
                .ok_or_else(|| {
                    AccessError::State(StateError::NotFound {
                        key: ResourceKey {
                            namespace: Arc::from(namespace),
                            type_name: Arc::from(type_name),
                            id: Arc::from(id),
                        },
                    })
                })
        })
    }

    /// Lists resources, ordered by id.
    pub fn list(
        &self,
        namespace: &str,
        type_name: &str,
        selector: &Selector,
    ) -> Result<Vec<Arc<RawResource>>, AccessError> {
        let mut found = self.state.read_kind(namespace, type_name, |kind| {
            let Some(kind) = kind else {
                return Ok(Vec::new());
            };
            if forbids(self.role, kind) {
                return Err(self.forbidden(type_name));
            }
            Ok(kind
                .resources
                .values()
                .filter(|raw| selector.matches(&raw.metadata.labels))
                .cloned()
                .collect::<Vec<_>>())
        })?;
        found.sort_unstable_by(|a, b| a.metadata.id.cmp(&b.metadata.id));
        Ok(found)
    }

    /// Watches a kind (see [`State::watch_kind`]). The role is checked again on every
    /// event: if the kind turns out to be sensitive after the watch began, the watch
    /// ends with [`WatchError::Forbidden`] before any of its resources is shown.
    pub fn watch(
        &self,
        namespace: &str,
        type_name: &str,
        since: Option<Bookmark>,
    ) -> Result<Watcher, AccessError> {
        self.watch_as(namespace, type_name, None, since)
    }

    /// Watches one resource (see [`State::watch`]), with the same checks as
    /// [`ClientView::watch`].
    pub fn watch_resource(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
    ) -> Result<Watcher, AccessError> {
        self.watch_as(namespace, type_name, Some(id), None)
    }

    fn watch_as(
        &self,
        namespace: &str,
        type_name: &str,
        id: Option<&str>,
        since: Option<Bookmark>,
    ) -> Result<Watcher, AccessError> {
        self.state
            .watch_as(namespace, type_name, id, since, self.role)
            .map_err(|source| match source {
                WatchError::Forbidden { .. } => self.forbidden(type_name),
                source => AccessError::Watch {
                    type_name: type_name.to_owned(),
                    source,
                },
            })
    }

    /// A resource's spec as JSON, for the API to send.
    pub fn get_json(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
    ) -> Result<serde_json::Value, AccessError> {
        let raw = self.get(namespace, type_name, id)?;
        self.spec_json(&raw)
    }

    /// The spec of a resource this view handed out (from [`ClientView::list`] or a
    /// watch event) as JSON, for the API to send; the role is checked again.
    pub fn spec_json(&self, raw: &RawResource) -> Result<serde_json::Value, AccessError> {
        let (namespace, type_name) = (&*raw.metadata.namespace, &*raw.metadata.type_name);
        let info = self
            .state
            .read_kind(namespace, type_name, |kind| match kind {
                Some(kind) if forbids(self.role, kind) => Err(self.forbidden(type_name)),
                kind => Ok(kind.map(|kind| kind.info)),
            })?;
        let json = info
            .map(|info| (info.to_json)(&raw.spec))
            .unwrap_or_else(|| Err("type is unknown".to_owned()));
        json.map_err(|reason| {
            AccessError::State(crate::error::StateError::SpecEncode {
                key: raw.metadata.key(),
                reason,
            })
        })
    }
}
