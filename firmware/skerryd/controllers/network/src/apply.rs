//! The controller that applies the desired links, addresses and routes to the kernel
//! (through [`Kernel`]) and publishes how each went; what the config dropped is removed.

use std::collections::BTreeSet;
use std::time::Duration;

use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, Selector,
};

use crate::kernel::Kernel;
use crate::resources::{
    AddressSpec, AddressStatus, Applied, LinkSpec, LinkStatus, RouteSpec, RouteStatus,
};

/// The controller's name.
pub const NAME: &str = "network.apply";
/// How soon a failed change is retried.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often everything is applied again (the kernel's state may have drifted).
pub const RESYNC: Duration = Duration::from_secs(300);

/// Applies the network specs to a kernel.
#[derive(Debug)]
pub struct NetworkApply<K> {
    kernel: K,
}

impl<K: Kernel> NetworkApply<K> {
    /// Applies to `kernel`.
    pub fn new(kernel: K) -> Self {
        NetworkApply { kernel }
    }
}

fn outcome(result: Result<(), crate::kernel::KernelError>, failures: &mut usize) -> Applied {
    match result {
        Ok(()) => Applied::Ready,
        Err(e) => {
            tracing::warn!(error = %e, "a network change failed");
            *failures += 1;
            Applied::Failed(e.to_string())
        }
    }
}

impl<K: Kernel> Controller for NetworkApply<K> {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::weak::<LinkSpec>(),
            Input::weak::<AddressSpec>(),
            Input::weak::<RouteSpec>(),
        ]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![
            Output::exclusive::<LinkStatus>(),
            Output::exclusive::<AddressStatus>(),
            Output::exclusive::<RouteStatus>(),
        ]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let all = Selector::all();
        let links = ctx.list::<LinkSpec>(&all)?;
        let addresses = ctx.list::<AddressSpec>(&all)?;
        let routes = ctx.list::<RouteSpec>(&all)?;
        let mut failures = 0;

        // What the config dropped goes first, so a changed address or route does not
        // meet its old self.
        let wanted: BTreeSet<&str> = routes.iter().map(|r| &*r.metadata.id).collect();
        for old in ctx.list::<RouteStatus>(&all)? {
            if !wanted.contains(&*old.metadata.id) {
                if let Err(e) = self.kernel.remove_route(&old.spec.spec).await {
                    tracing::warn!(error = %e, "a route was not removed");
                    failures += 1;
                    continue;
                }
                ctx.destroy::<RouteStatus>(&old.metadata.id)?;
            }
        }
        let wanted: BTreeSet<&str> = addresses.iter().map(|a| &*a.metadata.id).collect();
        for old in ctx.list::<AddressStatus>(&all)? {
            if !wanted.contains(&*old.metadata.id) {
                if let Err(e) = self.kernel.remove_address(&old.spec.spec).await {
                    tracing::warn!(error = %e, "an address was not removed");
                    failures += 1;
                    continue;
                }
                ctx.destroy::<AddressStatus>(&old.metadata.id)?;
            }
        }

        let mut ready_links = BTreeSet::new();
        for link in &links {
            let applied = outcome(self.kernel.ensure_link(&link.spec).await, &mut failures);
            if applied == Applied::Ready {
                ready_links.insert(link.spec.name.clone());
            }
            let status = LinkStatus {
                spec: link.spec.clone(),
                applied,
            };
            ctx.apply(&link.metadata.id, status)?;
        }
        for address in &addresses {
            let applied = if ready_links.contains(&address.spec.link) {
                outcome(
                    self.kernel.ensure_address(&address.spec).await,
                    &mut failures,
                )
            } else {
                failures += 1;
                Applied::Failed(format!("link {} is not up", address.spec.link))
            };
            let status = AddressStatus {
                spec: address.spec.clone(),
                applied,
            };
            ctx.apply(&address.metadata.id, status)?;
        }
        for route in &routes {
            let applied = match &route.spec.link {
                Some(link) if !ready_links.contains(link) => {
                    failures += 1;
                    Applied::Failed(format!("link {link} is not up"))
                }
                _ => outcome(self.kernel.ensure_route(&route.spec).await, &mut failures),
            };
            let status = RouteStatus {
                spec: route.spec.clone(),
                applied,
            };
            ctx.apply(&route.metadata.id, status)?;
        }
        // Links are not removed from the kernel (they are hardware); their status goes.
        let wanted: BTreeSet<&str> = links.iter().map(|l| &*l.metadata.id).collect();
        for old in ctx.list::<LinkStatus>(&all)? {
            if !wanted.contains(&*old.metadata.id) {
                ctx.destroy::<LinkStatus>(&old.metadata.id)?;
            }
        }
        Ok(Requeue::After(if failures > 0 {
            RETRY_AFTER
        } else {
            RESYNC
        }))
    }
}
