//! Reading the state on behalf of an API client with a role: sensitive types are for
//! admins only. Controllers read through their [`ReconcileContext`](crate::ReconcileContext)
//! instead, which checks their declared inputs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::AccessError;
use crate::resource::{RawResource, Selector, Sensitivity};
use crate::state::State;

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

    fn check(&self, namespace: &str, type_name: &str) -> Result<(), AccessError> {
        // A type never seen has no resources to leak; an unknown type seen only from
        // disk keeps the sensitivity it was stored with.
        let sensitive = self
            .state
            .type_info(namespace, type_name)
            .is_some_and(|info| info.sensitivity == Sensitivity::Sensitive);
        if sensitive && self.role != Role::Admin {
            return Err(AccessError::Forbidden {
                role: self.role,
                type_name: type_name.to_owned(),
            });
        }
        Ok(())
    }

    /// Reads one resource.
    pub fn get(
        &self,
        namespace: &str,
        type_name: &str,
        id: &str,
    ) -> Result<Arc<RawResource>, AccessError> {
        self.check(namespace, type_name)?;
        Ok(self.state.get_raw(namespace, type_name, id)?)
    }

    /// Lists resources.
    pub fn list(
        &self,
        namespace: &str,
        type_name: &str,
        selector: &Selector,
    ) -> Result<Vec<Arc<RawResource>>, AccessError> {
        self.check(namespace, type_name)?;
        Ok(self.state.list_raw(namespace, type_name, selector))
    }

    /// Watches a kind (see [`State::watch_raw`]).
    pub fn watch(
        &self,
        namespace: &str,
        type_name: &str,
        since: Option<crate::state::Bookmark>,
    ) -> Result<crate::state::Watcher, AccessError> {
        self.check(namespace, type_name)?;
        self.state
            .watch_raw(namespace, type_name, None, since)
            .map_err(|source| AccessError::Watch {
                type_name: type_name.to_owned(),
                source,
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
        let info = self.state.type_info(namespace, type_name);
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
