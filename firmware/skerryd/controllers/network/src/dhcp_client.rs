//! The DHCPv4 client controller (the simple case): on every link that asks for DHCP and
//! is up, DISCOVER → OFFER → REQUEST → ACK, the leased address and default route put on
//! the link through [`Kernel`], the lease published as [`DhcpLease`]; renewed by unicast
//! at T1, rebound by broadcast at T2, dropped (and discovery started again) when it
//! expires or the server says NAK. Each exchange is bounded by a timeout and a number of
//! attempts, and runs inside the reconcile.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime};

use skerry_config::kinds::common::Cidr;
use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, ResourceSpec, Selector,
};
use skerryd_core::resources::{ActiveMachine, SINGLETON};
use skerryd_core::{EventLog, NewEvent};

use crate::dhcp::{DhcpError, MessageType, Reply, Request, CLIENT_PORT, MAX_MESSAGE, SERVER_PORT};
use crate::kernel::Kernel;
use crate::resources::{AddressSpec, Applied, DhcpLease, LinkStatus, RouteSpec};

/// The controller's name.
pub const NAME: &str = "network.dhcp";
/// The metric of the default route a lease installs (above a static one's 0).
pub const LEASE_ROUTE_METRIC: u32 = 1024;
/// How soon a failed discovery is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
/// The longest wait between renewal attempts.
pub const MAX_RENEW_WAIT: Duration = Duration::from_secs(60);
/// The most links a client runs on.
pub const MAX_LINKS: usize = 16;

/// Exchange timeouts, tunable for tests.
#[derive(Debug, Clone, Copy)]
pub struct DhcpTuning {
    /// How long one message waits for its reply.
    pub timeout: Duration,
    /// Messages sent per exchange.
    pub attempts: u32,
}

impl Default for DhcpTuning {
    fn default() -> Self {
        DhcpTuning {
            timeout: Duration::from_secs(3),
            attempts: 3,
        }
    }
}

#[derive(Debug, Clone)]
struct Held {
    lease: DhcpLease,
    server: Ipv4Addr,
    address: Ipv4Addr,
    mac: [u8; 6],
    got: Instant,
}

/// Runs the DHCP client on the links that ask for it.
#[derive(Debug)]
pub struct DhcpClient<K> {
    kernel: K,
    events: EventLog,
    tuning: DhcpTuning,
    held: BTreeMap<String, Held>,
    counter: u64,
}

fn socket(link: &str) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket.bind_device(Some(link.as_bytes()))?;
    socket.bind(&SocketAddr::from(([0, 0, 0, 0], CLIENT_PORT)).into())?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Why an exchange gave no lease.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("{0}")]
    Io(String),
    #[error("no answer after {attempts} attempts of {timeout:?}")]
    Timeout { attempts: u32, timeout: Duration },
    #[error("the server refused (NAK)")]
    Nak,
}

impl<K: Kernel> DhcpClient<K> {
    /// A client applying leases to `kernel`.
    pub fn new(kernel: K, events: EventLog, tuning: DhcpTuning) -> Self {
        DhcpClient {
            kernel,
            events,
            tuning,
            held: BTreeMap::new(),
            counter: 0,
        }
    }

    fn xid(&mut self, link: &str) -> u32 {
        self.counter += 1;
        let seed = format!("{link} {:?} {}", SystemTime::now(), self.counter);
        let hash = blake3::hash(seed.as_bytes());
        let b = hash.as_bytes();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Sends `request` to `to` until a reply of one of `wanted` (or a NAK) arrives.
    async fn exchange(
        &self,
        link: &str,
        to: SocketAddrV4,
        request: &Request,
        wanted: MessageType,
    ) -> Result<Reply, ExchangeError> {
        let socket = socket(link)
            .map_err(|e| ExchangeError::Io(format!("opening a DHCP socket on {link}: {e}")))?;
        let bytes = request.encode();
        let mut buffer = vec![0u8; MAX_MESSAGE + 1];
        let attempts = self.tuning.attempts.max(1);
        for _ in 0..attempts {
            socket
                .send_to(&bytes, to)
                .await
                .map_err(|e| ExchangeError::Io(format!("sending to {to} on {link}: {e}")))?;
            let deadline = tokio::time::Instant::now() + self.tuning.timeout;
            loop {
                let received =
                    match tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await {
                        Err(_) => break,
                        Ok(Err(e)) => {
                            return Err(ExchangeError::Io(format!("receiving on {link}: {e}")))
                        }
                        Ok(Ok((n, _))) => n,
                    };
                match Reply::parse(&buffer[..received], request.xid, &request.mac) {
                    Ok(reply) if reply.kind == wanted => return Ok(reply),
                    Ok(reply) if reply.kind == MessageType::Nak => return Err(ExchangeError::Nak),
                    Ok(_) | Err(DhcpError::NotOurs) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, link, "a malformed DHCP message was ignored");
                        continue;
                    }
                }
            }
        }
        Err(ExchangeError::Timeout {
            attempts,
            timeout: self.tuning.timeout,
        })
    }

    async fn discover(
        &mut self,
        link: &str,
        hostname: Option<String>,
    ) -> Result<Held, ExchangeError> {
        let mac = self
            .kernel
            .hardware_address(link)
            .await
            .map_err(|e| ExchangeError::Io(e.to_string()))?;
        let xid = self.xid(link);
        let broadcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT);
        let mut request = Request {
            kind: MessageType::Discover,
            xid,
            mac,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: None,
            server: None,
            hostname,
            secs: 0,
        };
        let offer = self
            .exchange(link, broadcast, &request, MessageType::Offer)
            .await?;
        request.kind = MessageType::Request;
        request.requested = Some(offer.yiaddr);
        request.server = offer.server;
        let ack = self
            .exchange(link, broadcast, &request, MessageType::Ack)
            .await?;
        Ok(self.held(link, mac, &ack))
    }

    /// Renews (unicast to the server) or rebinds (broadcast) the lease held on `link`.
    async fn extend(
        &mut self,
        link: &str,
        held: &Held,
        rebinding: bool,
    ) -> Result<Held, ExchangeError> {
        let xid = self.xid(link);
        let request = Request {
            kind: MessageType::Request,
            xid,
            mac: held.mac,
            ciaddr: held.address,
            requested: None,
            server: None,
            hostname: None,
            secs: 0,
        };
        let to = if rebinding {
            SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT)
        } else {
            SocketAddrV4::new(held.server, SERVER_PORT)
        };
        let ack = self.exchange(link, to, &request, MessageType::Ack).await?;
        Ok(self.held(link, held.mac, &ack))
    }

    fn held(&self, link: &str, mac: [u8; 6], ack: &Reply) -> Held {
        let (lease, renew, rebind) = ack.times();
        let server = ack.server.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let net = ipnet::Ipv4Net::new(ack.yiaddr, ack.prefix_len())
            .unwrap_or_else(|_| ipnet::Ipv4Net::from(ack.yiaddr));
        let address = Cidr(ipnet::IpNet::V4(net));
        Held {
            lease: DhcpLease {
                link: link.to_owned(),
                address,
                routers: ack.routers.iter().map(|&r| r.into()).collect(),
                dns: ack.dns.iter().map(|&d| d.into()).collect(),
                server: server.into(),
                acquired: SystemTime::now(),
                lease,
                renew,
                rebind,
            },
            server,
            address: ack.yiaddr,
            mac,
            got: Instant::now(),
        }
    }

    fn address_spec(lease: &DhcpLease) -> AddressSpec {
        AddressSpec {
            link: lease.link.clone(),
            address: lease.address,
        }
    }

    fn route_spec(lease: &DhcpLease) -> Option<RouteSpec> {
        let gateway = *lease.routers.first()?;
        Some(RouteSpec {
            destination: "0.0.0.0/0".parse().ok()?,
            gateway,
            link: Some(lease.link.clone()),
            metric: Some(LEASE_ROUTE_METRIC),
        })
    }

    /// Puts the lease's address and route on its link, replacing the old lease's.
    async fn install(&self, old: Option<&Held>, new: &Held) -> Result<(), ControllerError> {
        if let Some(old) = old {
            if old.lease.address != new.lease.address || old.lease.routers != new.lease.routers {
                self.uninstall(old).await;
            }
        }
        self.kernel
            .ensure_address(&Self::address_spec(&new.lease))
            .await?;
        if let Some(route) = Self::route_spec(&new.lease) {
            self.kernel.ensure_route(&route).await?;
        }
        Ok(())
    }

    async fn uninstall(&self, held: &Held) {
        if let Some(route) = Self::route_spec(&held.lease) {
            if let Err(e) = self.kernel.remove_route(&route).await {
                tracing::warn!(error = %e, "the lease's route was not removed");
            }
        }
        if let Err(e) = self
            .kernel
            .remove_address(&Self::address_spec(&held.lease))
            .await
        {
            tracing::warn!(error = %e, "the lease's address was not removed");
        }
    }

    fn event(&self, kind: &str, message: String, lease: &DhcpLease) {
        self.events.push(
            NewEvent::new(kind, message)
                .about(DhcpLease::NAMESPACE, DhcpLease::TYPE, &lease.link)
                .with("link", &lease.link)
                .with("address", lease.address)
                .with("server", lease.server)
                .with("lease_seconds", lease.lease.as_secs()),
        );
    }

    async fn drop_lease(
        &mut self,
        ctx: &mut ReconcileContext,
        link: &str,
        why: &str,
    ) -> Result<(), ControllerError> {
        if let Some(held) = self.held.remove(link) {
            self.uninstall(&held).await;
            self.event(
                "network.dhcp.lost",
                format!("lost the lease on {link}: {why}"),
                &held.lease,
            );
        }
        ctx.destroy::<DhcpLease>(link)?;
        Ok(())
    }

    /// Brings `link`'s lease up to date; returns when to look again.
    async fn tend(
        &mut self,
        ctx: &mut ReconcileContext,
        link: &str,
        hostname: Option<String>,
    ) -> Result<Duration, ControllerError> {
        if let Some(held) = self.held.get(link).cloned() {
            let age = held.got.elapsed();
            let lease = &held.lease;
            if age >= lease.lease {
                self.drop_lease(ctx, link, "it expired").await?;
            } else if age >= lease.renew {
                let rebinding = age >= lease.rebind;
                match self.extend(link, &held, rebinding).await {
                    Ok(new) => {
                        self.install(Some(&held), &new).await?;
                        ctx.apply(link, new.lease.clone())?;
                        self.event(
                            "network.dhcp.renewed",
                            format!("renewed the lease on {link}"),
                            &new.lease,
                        );
                        let renew = new.lease.renew;
                        self.held.insert(link.to_owned(), new);
                        return Ok(renew);
                    }
                    Err(ExchangeError::Nak) => {
                        self.drop_lease(ctx, link, "the server refused to extend it")
                            .await?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, link, rebinding, "the lease was not extended");
                        let until = if rebinding { lease.lease } else { lease.rebind };
                        let left = until.saturating_sub(held.got.elapsed());
                        return Ok((left / 2).clamp(Duration::from_secs(1), MAX_RENEW_WAIT));
                    }
                }
            } else {
                return Ok(lease.renew - age);
            }
        }
        match self.discover(link, hostname).await {
            Ok(new) => {
                self.install(None, &new).await?;
                ctx.apply(link, new.lease.clone())?;
                self.event(
                    "network.dhcp.bound",
                    format!(
                        "leased {} on {link} from {}",
                        new.lease.address, new.lease.server
                    ),
                    &new.lease,
                );
                let renew = new.lease.renew;
                self.held.insert(link.to_owned(), new);
                Ok(renew)
            }
            Err(e) => {
                tracing::warn!(error = %e, link, "no DHCP lease");
                Err(format!("no DHCP lease on {link}: {e}").into())
            }
        }
    }
}

impl<K: Kernel> Controller for DhcpClient<K> {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::weak::<LinkStatus>(), Input::weak::<ActiveMachine>()]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![Output::exclusive::<DhcpLease>()]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let hostname = ctx
            .get::<ActiveMachine>(SINGLETON)?
            .map(|m| m.spec.0.hostname);
        let links: Vec<String> = ctx
            .list::<LinkStatus>(&Selector::all())?
            .into_iter()
            .filter(|l| l.spec.spec.dhcp && l.spec.applied == Applied::Ready)
            .map(|l| l.spec.spec.name)
            .take(MAX_LINKS)
            .collect();
        let gone: Vec<String> = self
            .held
            .keys()
            .filter(|l| !links.contains(l))
            .cloned()
            .collect();
        for link in gone {
            self.drop_lease(ctx, &link, "the link no longer asks for DHCP")
                .await?;
        }
        for stale in ctx.list::<DhcpLease>(&Selector::all())? {
            if !self.held.contains_key(&*stale.metadata.id) {
                ctx.destroy::<DhcpLease>(&stale.metadata.id)?;
            }
        }
        let mut next = Duration::from_secs(3600);
        let mut errors = Vec::new();
        for link in &links {
            match self.tend(ctx, link, hostname.clone()).await {
                Ok(wait) => next = next.min(wait),
                Err(e) => {
                    next = next.min(RETRY_AFTER);
                    errors.push(e.to_string());
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; ").into());
        }
        if links.is_empty() {
            return Ok(Requeue::OnChange);
        }
        Ok(Requeue::After(next.max(Duration::from_millis(200))))
    }
}
