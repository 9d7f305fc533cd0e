//! [`NetlinkKernel`]: the Linux implementation of [`Kernel`] over rtnetlink. Each call
//! opens its own netlink socket, in the network namespace of the calling thread.

use futures_util::TryStreamExt as _;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::kernel::{Kernel, KernelError};
use crate::resources::{AddressSpec, LinkSpec, RouteSpec};

/// `ENOENT`, `ESRCH`, `EADDRNOTAVAIL`: what deleting something absent answers.
const ABSENT: [i32; 3] = [2, 3, 99];

/// The kernel over rtnetlink (needs `CAP_NET_ADMIN`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NetlinkKernel;

fn failed(what: &str) -> impl Fn(rtnetlink::Error) -> KernelError + '_ {
    move |e| KernelError {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

fn is_absent(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if ABSENT.contains(&-m.raw_code()))
}

async fn connect(what: &str) -> Result<Handle, KernelError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| KernelError {
        what: what.to_owned(),
        message: format!("opening a netlink socket: {e}"),
    })?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn index(handle: &Handle, name: &str, what: &str) -> Result<u32, KernelError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(KernelError {
            what: what.to_owned(),
            message: format!("no link named {name}"),
        }),
        Err(e)
            if is_absent(&e)
                || matches!(&e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -19) =>
        {
            Err(KernelError {
                what: what.to_owned(),
                message: format!("no link named {name}"),
            })
        }
        Err(e) => Err(failed(what)(e)),
    }
}

fn route_message(
    route: &RouteSpec,
    index: Option<u32>,
    what: &str,
) -> Result<rtnetlink::packet_route::route::RouteMessage, KernelError> {
    fn invalid<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> KernelError + '_ {
        move |e| KernelError {
            what: what.to_owned(),
            message: e.to_string(),
        }
    }
    let mut builder = RouteMessageBuilder::<std::net::IpAddr>::new()
        .destination_prefix(
            route.destination.0.network(),
            route.destination.0.prefix_len(),
        )
        .map_err(invalid(what))?
        .gateway(route.gateway)
        .map_err(invalid(what))?;
    if let Some(index) = index {
        builder = builder.output_interface(index);
    }
    if let Some(metric) = route.metric {
        builder = builder.priority(metric);
    }
    Ok(builder.build())
}

impl Kernel for NetlinkKernel {
    async fn hardware_address(&self, link: &str) -> Result<[u8; 6], KernelError> {
        use rtnetlink::packet_route::link::LinkAttribute;
        let what = format!("reading the hardware address of {link}");
        let handle = connect(&what).await?;
        let mut links = handle.link().get().match_name(link.to_owned()).execute();
        let message = links
            .try_next()
            .await
            .map_err(failed(&what))?
            .ok_or_else(|| KernelError {
                what: what.clone(),
                message: format!("no link named {link}"),
            })?;
        message
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| KernelError {
                what,
                message: "the link has no Ethernet address".into(),
            })
    }

    async fn ensure_link(&self, link: &LinkSpec) -> Result<(), KernelError> {
        let what = format!("bringing up {}", link.name);
        let handle = connect(&what).await?;
        let index = index(&handle, &link.name, &what).await?;
        let mut message = LinkUnspec::new_with_index(index).up();
        if let Some(mtu) = link.mtu {
            message = message.mtu(u32::from(mtu));
        }
        handle
            .link()
            .set(message.build())
            .execute()
            .await
            .map_err(failed(&what))
    }

    async fn ensure_address(&self, address: &AddressSpec) -> Result<(), KernelError> {
        let what = format!("adding {} to {}", address.address, address.link);
        let handle = connect(&what).await?;
        let index = index(&handle, &address.link, &what).await?;
        handle
            .address()
            .add(
                index,
                address.address.addr(),
                address.address.0.prefix_len(),
            )
            .replace()
            .execute()
            .await
            .map_err(failed(&what))
    }

    async fn remove_address(&self, address: &AddressSpec) -> Result<(), KernelError> {
        let what = format!("removing {} from {}", address.address, address.link);
        let handle = connect(&what).await?;
        let index = match index(&handle, &address.link, &what).await {
            Ok(index) => index,
            // The link is gone, and its addresses with it.
            Err(_) => return Ok(()),
        };
        let mut found = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(address.address.addr())
            .set_prefix_length_filter(address.address.0.prefix_len())
            .execute();
        while let Some(message) = found.try_next().await.map_err(failed(&what))? {
            match handle.address().del(message).execute().await {
                Ok(()) => {}
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(failed(&what)(e)),
            }
        }
        Ok(())
    }

    async fn ensure_route(&self, route: &RouteSpec) -> Result<(), KernelError> {
        let what = format!(
            "adding the route to {} via {}",
            route.destination, route.gateway
        );
        let handle = connect(&what).await?;
        let index = match &route.link {
            Some(link) => Some(index(&handle, link, &what).await?),
            None => None,
        };
        let message = route_message(route, index, &what)?;
        handle
            .route()
            .add(message)
            .replace()
            .execute()
            .await
            .map_err(failed(&what))
    }

    async fn remove_route(&self, route: &RouteSpec) -> Result<(), KernelError> {
        let what = format!(
            "removing the route to {} via {}",
            route.destination, route.gateway
        );
        let handle = connect(&what).await?;
        let index = match &route.link {
            Some(link) => match index(&handle, link, &what).await {
                Ok(index) => Some(index),
                Err(_) => return Ok(()),
            },
            None => None,
        };
        let message = route_message(route, index, &what)?;
        match handle.route().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(failed(&what)(e)),
        }
    }
}
