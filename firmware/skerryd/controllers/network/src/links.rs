//! The controller that turns the network config into the desired links, addresses and
//! routes ([`LinkSpec`], [`AddressSpec`], [`RouteSpec`]).

use skerry_config::kinds::NetworkConfig;
use skerry_runtime::{Controller, ControllerError, Input, Output, ReconcileContext, Requeue};
use skerryd_core::resources::{ActiveNetwork, SINGLETON};

use crate::resources::{AddressSpec, LinkSpec, RouteSpec};

/// The controller's name.
pub const NAME: &str = "network.specs";
/// The most links, addresses and routes taken from the config (each).
pub const MAX_SPECS: usize = 256;

/// An address's id: `LINK/ADDRESS/PREFIX`.
pub fn address_id(spec: &AddressSpec) -> String {
    format!("{}/{}", spec.link, spec.address)
}

/// A route's id: `DESTINATION via GATEWAY`.
pub fn route_id(spec: &RouteSpec) -> String {
    format!("{} via {}", spec.destination, spec.gateway)
}

/// The desired state of `config`: every link, its static addresses, and the routes with
/// their link resolved (the one whose subnet holds the gateway, when the config names
/// none).
pub fn specs(config: &NetworkConfig) -> (Vec<LinkSpec>, Vec<AddressSpec>, Vec<RouteSpec>) {
    let links = config
        .links
        .iter()
        .take(MAX_SPECS)
        .map(|l| LinkSpec {
            name: l.name.clone(),
            mtu: l.mtu,
            dhcp: l.dhcp,
        })
        .collect();
    let addresses = config
        .links
        .iter()
        .take(MAX_SPECS)
        .flat_map(|l| {
            l.addresses.iter().map(|a| AddressSpec {
                link: l.name.clone(),
                address: *a,
            })
        })
        .take(MAX_SPECS)
        .collect();
    let routes = config
        .routes
        .iter()
        .take(MAX_SPECS)
        .map(|r| RouteSpec {
            destination: r.destination,
            gateway: r.gateway,
            link: r.link.clone().or_else(|| {
                config
                    .links
                    .iter()
                    .find(|l| l.addresses.iter().any(|a| a.contains(&r.gateway)))
                    .map(|l| l.name.clone())
            }),
            metric: r.metric,
        })
        .collect();
    (links, addresses, routes)
}

/// Publishes the desired network state.
#[derive(Debug, Default)]
pub struct NetworkSpecs;

impl Controller for NetworkSpecs {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::weak::<ActiveNetwork>()]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![
            Output::exclusive::<LinkSpec>(),
            Output::exclusive::<AddressSpec>(),
            Output::exclusive::<RouteSpec>(),
        ]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let config = ctx
            .get::<ActiveNetwork>(SINGLETON)?
            .map(|r| r.spec.0)
            .unwrap_or_default();
        let (links, addresses, routes) = specs(&config);
        for link in links {
            ctx.apply(&link.name.clone(), link)?;
        }
        for address in addresses {
            ctx.apply(&address_id(&address), address)?;
        }
        for route in routes {
            ctx.apply(&route_id(&route), route)?;
        }
        ctx.cleanup_untouched::<LinkSpec>()?;
        ctx.cleanup_untouched::<AddressSpec>()?;
        ctx.cleanup_untouched::<RouteSpec>()?;
        Ok(Requeue::OnChange)
    }
}
