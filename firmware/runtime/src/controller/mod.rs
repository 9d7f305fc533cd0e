//! Controllers: the [`Controller`] trait, what they declare ([`Input`], [`Output`]),
//! and the [`Runtime`] that runs them.
//!
//! Layout:
//! - `context`: [`ReconcileContext`], the only door a controller has to the state; it
//!   enforces the declarations and tracks outputs for cleanup.
//! - `runtime`: registration (ownership checks) and [`RuntimeHandle`].
//! - `runner`: one task per controller: coalesced triggers, timers, requeues,
//!   restart with exponential backoff after an error or panic.
//! - `status`: per-controller counters, and the status resource errors appear in.
//! - `activity`: when each controller last reconciled, and whether it is in one now.
//! - `graph`: the dependency graph as data and DOT.
//! - `transform`: [`Transform`], one input type to one output type through a function.

mod activity;
mod context;
mod graph;
mod runner;
mod runtime;
mod status;
mod transform;

use std::future::Future;
use std::time::Duration;

pub use self::activity::{Activity, ControllerActivity};
pub use self::context::{ReconcileContext, Teardown};
pub use self::graph::{DependencyGraph, Edge, EdgeKind};
pub use self::runtime::{Runtime, RuntimeHandle, RuntimeOptions};
pub use self::status::{ControllerStatus, ControllerStatusSpec};
pub use self::transform::Transform;
use crate::resource::ResourceSpec;

/// What a controller's reconcile may fail with; it is shown in its status.
pub type ControllerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a controller depends on an input type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputStrength {
    /// It may hold finalizers on the input's resources, so they are not destroyed
    /// before it has cleaned up what it derived from them.
    Strong,
    /// It only reads and watches.
    Weak,
}

/// A type a controller reads; changes to it trigger a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// Namespace watched.
    pub namespace: &'static str,
    /// Type watched.
    pub type_name: &'static str,
    /// Strong or weak.
    pub strength: InputStrength,
}

impl Input {
    /// A strong input of `T`.
    pub fn strong<T: ResourceSpec>() -> Self {
        Input {
            namespace: T::NAMESPACE,
            type_name: T::TYPE,
            strength: InputStrength::Strong,
        }
    }

    /// A weak input of `T`.
    pub fn weak<T: ResourceSpec>() -> Self {
        Input {
            namespace: T::NAMESPACE,
            type_name: T::TYPE,
            strength: InputStrength::Weak,
        }
    }
}

/// Whether other controllers may write an output type too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputOwnership {
    /// Only this controller writes the type; a second claimant fails registration.
    Exclusive,
    /// Several controllers write the type, each only the resources it created.
    Shared,
}

/// A type a controller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Namespace written.
    pub namespace: &'static str,
    /// Type written.
    pub type_name: &'static str,
    /// Exclusive or shared.
    pub ownership: OutputOwnership,
}

impl Output {
    /// `T`, written by this controller only.
    pub fn exclusive<T: ResourceSpec>() -> Self {
        Output {
            namespace: T::NAMESPACE,
            type_name: T::TYPE,
            ownership: OutputOwnership::Exclusive,
        }
    }

    /// `T`, shared with other controllers.
    pub fn shared<T: ResourceSpec>() -> Self {
        Output {
            namespace: T::NAMESPACE,
            type_name: T::TYPE,
            ownership: OutputOwnership::Shared,
        }
    }
}

/// When to reconcile again without an input change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Only when an input changes (or someone triggers it).
    OnChange,
    /// Again at once, with a full resync (e.g. after a partial step).
    Now,
    /// After this long, with a full resync.
    After(Duration),
}

/// A controller: it declares what it reads and writes, and reconciles when woken.
///
/// Reconcile takes no event: it looks at the state. [`ReconcileContext::changed`]
/// tells which input resources changed since the last run, as an optimisation; when
/// it returns `None` (first run, restart, timer, lost events) the controller must
/// look at everything.
pub trait Controller: Send + 'static {
    /// A name unique in the runtime; it owns the controller's outputs.
    fn name(&self) -> &str;
    /// Types it reads.
    fn inputs(&self) -> Vec<Input>;
    /// Types it writes.
    fn outputs(&self) -> Vec<Output>;
    /// Brings the outputs in line with the inputs.
    fn reconcile(
        &mut self,
        ctx: &mut ReconcileContext,
    ) -> impl Future<Output = Result<Requeue, ControllerError>> + Send;
}
