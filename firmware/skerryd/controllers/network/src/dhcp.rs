//! DHCPv4 messages (RFC 2131, options from RFC 2132) for the simple client: DISCOVER
//! and REQUEST out; OFFER, ACK and NAK in, parsed with every length checked against
//! the packet before it is used.

use std::net::Ipv4Addr;
use std::time::Duration;

/// The fixed part of a message and the magic cookie.
pub const HEADER_LEN: usize = 240;
/// The largest message read (an Ethernet MTU's worth; longer ones are refused).
pub const MAX_MESSAGE: usize = 1500;
/// The most addresses taken from one list option (routers, DNS servers).
pub const MAX_LIST: usize = 8;
/// The shortest lease accepted (shorter ones are taken as this long).
pub const MIN_LEASE: Duration = Duration::from_secs(10);
/// The longest lease honoured (longer ones, and "infinite", are taken as this long).
pub const MAX_LEASE: Duration = Duration::from_secs(30 * 86_400);
/// The server's port.
pub const SERVER_PORT: u16 = 67;
/// The client's port.
pub const CLIENT_PORT: u16 = 68;

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
const BROADCAST_FLAG: u16 = 0x8000;

const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_HOSTNAME: u8 = 12;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMETERS: u8 = 55;
const OPT_RENEWAL: u8 = 58;
const OPT_REBINDING: u8 = 59;
const OPT_CLIENT_ID: u8 = 61;
const OPT_END: u8 = 255;

/// A message's type (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Client looks for servers.
    Discover,
    /// Server offers an address.
    Offer,
    /// Client asks for (or renews) an address.
    Request,
    /// Client refuses an address in use.
    Decline,
    /// Server grants the lease.
    Ack,
    /// Server refuses the request.
    Nak,
    /// Client gives the address back.
    Release,
}

impl MessageType {
    fn code(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            _ => return None,
        })
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhcpError {
    /// Shorter than the fixed header.
    #[error("the message is {len} bytes, shorter than a DHCP header ({HEADER_LEN})")]
    Short {
        /// Its length.
        len: usize,
    },
    /// Longer than [`MAX_MESSAGE`].
    #[error("the message is {len} bytes, more than the limit of {MAX_MESSAGE}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// No magic cookie: BOOTP, not DHCP.
    #[error("the message has no DHCP magic cookie")]
    NoCookie,
    /// An option runs past the end of the message.
    #[error("option {code} runs past the end of the message")]
    Truncated {
        /// The option's code.
        code: u8,
    },
    /// An option's length does not fit its type.
    #[error("option {code} has a length of {len}, which does not fit its type")]
    BadLength {
        /// The option's code.
        code: u8,
        /// Its length.
        len: usize,
    },
    /// No message type, or an unknown one.
    #[error("the message has no known DHCP message type")]
    NoType,
    /// Not a reply to us.
    #[error("the message is not a reply to our transaction")]
    NotOurs,
    /// An offer or ack without an address or a server identifier.
    #[error("the {kind:?} lacks {what}")]
    Incomplete {
        /// Its type.
        kind: MessageType,
        /// What is missing.
        what: &'static str,
    },
    /// The subnet mask is not a contiguous prefix.
    #[error("the subnet mask {mask} is not a prefix")]
    BadMask {
        /// The mask.
        mask: Ipv4Addr,
    },
}

/// What the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// DISCOVER or REQUEST (or RELEASE).
    pub kind: MessageType,
    /// The transaction id.
    pub xid: u32,
    /// The interface's hardware address.
    pub mac: [u8; 6],
    /// Our current address (renewing, rebinding, releasing); 0 otherwise.
    pub ciaddr: Ipv4Addr,
    /// The address asked for (a REQUEST after an OFFER).
    pub requested: Option<Ipv4Addr>,
    /// The server chosen (a REQUEST after an OFFER, a RELEASE).
    pub server: Option<Ipv4Addr>,
    /// The host name to announce.
    pub hostname: Option<String>,
    /// Seconds since the client began (the `secs` field).
    pub secs: u16,
}

impl Request {
    /// The message's bytes. Replies are asked for by broadcast while the client has no
    /// address (its socket cannot receive unicast yet).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out[0] = BOOTREQUEST;
        out[1] = 1; // Ethernet
        out[2] = 6;
        out[4..8].copy_from_slice(&self.xid.to_be_bytes());
        out[8..10].copy_from_slice(&self.secs.to_be_bytes());
        if self.ciaddr.is_unspecified() {
            out[10..12].copy_from_slice(&BROADCAST_FLAG.to_be_bytes());
        }
        out[12..16].copy_from_slice(&self.ciaddr.octets());
        out[28..34].copy_from_slice(&self.mac);
        out[236..240].copy_from_slice(&MAGIC);
        let mut option = |code: u8, data: &[u8]| {
            out.push(code);
            out.push(data.len().min(255) as u8);
            out.extend_from_slice(&data[..data.len().min(255)]);
        };
        option(OPT_MESSAGE_TYPE, &[self.kind.code()]);
        let mut client_id = vec![1u8];
        client_id.extend_from_slice(&self.mac);
        option(OPT_CLIENT_ID, &client_id);
        if let Some(ip) = self.requested {
            option(OPT_REQUESTED_IP, &ip.octets());
        }
        if let Some(ip) = self.server {
            option(OPT_SERVER_ID, &ip.octets());
        }
        if let Some(name) = self.hostname.as_deref().filter(|n| !n.is_empty()) {
            option(OPT_HOSTNAME, name.as_bytes());
        }
        option(
            OPT_PARAMETERS,
            &[
                OPT_SUBNET_MASK,
                OPT_ROUTER,
                OPT_DNS,
                OPT_LEASE_TIME,
                OPT_RENEWAL,
                OPT_REBINDING,
            ],
        );
        out.push(OPT_END);
        // Some servers ignore requests shorter than a BOOTP message (300 bytes).
        if out.len() < 300 {
            out.resize(300, OPT_PAD);
        }
        out
    }
}

/// A server's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// OFFER, ACK or NAK (or anything else a server sent).
    pub kind: MessageType,
    /// The transaction id.
    pub xid: u32,
    /// The address offered or granted.
    pub yiaddr: Ipv4Addr,
    /// The server's identifier (option 54).
    pub server: Option<Ipv4Addr>,
    /// The subnet's prefix length (option 1).
    pub prefix: Option<u8>,
    /// Routers (option 3).
    pub routers: Vec<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Lease time (option 51).
    pub lease: Option<Duration>,
    /// Renewal time T1 (option 58).
    pub renew: Option<Duration>,
    /// Rebinding time T2 (option 59).
    pub rebind: Option<Duration>,
}

fn addresses(code: u8, data: &[u8]) -> Result<Vec<Ipv4Addr>, DhcpError> {
    if data.is_empty() || data.len() % 4 != 0 {
        return Err(DhcpError::BadLength {
            code,
            len: data.len(),
        });
    }
    Ok(data
        .chunks_exact(4)
        .take(MAX_LIST)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect())
}

fn one_address(code: u8, data: &[u8]) -> Result<Ipv4Addr, DhcpError> {
    if data.len() != 4 {
        return Err(DhcpError::BadLength {
            code,
            len: data.len(),
        });
    }
    Ok(Ipv4Addr::new(data[0], data[1], data[2], data[3]))
}

fn seconds(code: u8, data: &[u8]) -> Result<Duration, DhcpError> {
    let bytes: [u8; 4] = data.try_into().map_err(|_| DhcpError::BadLength {
        code,
        len: data.len(),
    })?;
    Ok(Duration::from_secs(u64::from(u32::from_be_bytes(bytes))))
}

fn prefix_of(mask: Ipv4Addr) -> Result<u8, DhcpError> {
    let bits = u32::from(mask);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        return Err(DhcpError::BadMask { mask });
    }
    Ok(prefix as u8)
}

impl Reply {
    /// Parses a server's message for transaction `xid` from the client `mac`.
    pub fn parse(bytes: &[u8], xid: u32, mac: &[u8; 6]) -> Result<Reply, DhcpError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(DhcpError::TooLong { len: bytes.len() });
        }
        if bytes.len() < HEADER_LEN {
            return Err(DhcpError::Short { len: bytes.len() });
        }
        if bytes[236..240] != MAGIC {
            return Err(DhcpError::NoCookie);
        }
        let found_xid = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if bytes[0] != BOOTREPLY || found_xid != xid || bytes[28..34] != mac[..] {
            return Err(DhcpError::NotOurs);
        }
        let yiaddr = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
        let mut reply = Reply {
            kind: MessageType::Nak,
            xid,
            yiaddr,
            server: None,
            prefix: None,
            routers: Vec::new(),
            dns: Vec::new(),
            lease: None,
            renew: None,
            rebind: None,
        };
        let mut kind = None;
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            let code = bytes[at];
            if code == OPT_PAD {
                at += 1;
                continue;
            }
            if code == OPT_END {
                break;
            }
            let len = *bytes.get(at + 1).ok_or(DhcpError::Truncated { code })? as usize;
            let data = bytes
                .get(at + 2..at + 2 + len)
                .ok_or(DhcpError::Truncated { code })?;
            at += 2 + len;
            match code {
                OPT_MESSAGE_TYPE => {
                    if len != 1 {
                        return Err(DhcpError::BadLength { code, len });
                    }
                    kind = MessageType::from_code(data[0]);
                }
                OPT_SUBNET_MASK => reply.prefix = Some(prefix_of(one_address(code, data)?)?),
                OPT_ROUTER => reply.routers = addresses(code, data)?,
                OPT_DNS => reply.dns = addresses(code, data)?,
                OPT_SERVER_ID => reply.server = Some(one_address(code, data)?),
                OPT_LEASE_TIME => reply.lease = Some(seconds(code, data)?),
                OPT_RENEWAL => reply.renew = Some(seconds(code, data)?),
                OPT_REBINDING => reply.rebind = Some(seconds(code, data)?),
                _ => {}
            }
        }
        reply.kind = kind.ok_or(DhcpError::NoType)?;
        if matches!(reply.kind, MessageType::Offer | MessageType::Ack) {
            if yiaddr.is_unspecified() || yiaddr.is_broadcast() || yiaddr.is_multicast() {
                return Err(DhcpError::Incomplete {
                    kind: reply.kind,
                    what: "a usable address",
                });
            }
            if reply.server.is_none() {
                return Err(DhcpError::Incomplete {
                    kind: reply.kind,
                    what: "a server identifier (option 54)",
                });
            }
        }
        Ok(reply)
    }

    /// The lease's times: the lease bounded by [`MIN_LEASE`] and [`MAX_LEASE`], T1 and
    /// T2 as given if they are in order (else half and seven eighths of the lease).
    pub fn times(&self) -> (Duration, Duration, Duration) {
        let lease = self.lease.unwrap_or(MIN_LEASE).clamp(MIN_LEASE, MAX_LEASE);
        let mut rebind = self.rebind.unwrap_or(lease * 7 / 8);
        if rebind > lease {
            rebind = lease * 7 / 8;
        }
        let mut renew = self.renew.unwrap_or(lease / 2);
        if renew > rebind {
            renew = (lease / 2).min(rebind);
        }
        (lease, renew, rebind)
    }

    /// The prefix length: option 1, or the classful default for the address.
    pub fn prefix_len(&self) -> u8 {
        self.prefix.unwrap_or(match self.yiaddr.octets()[0] {
            0..=127 => 8,
            128..=191 => 16,
            _ => 24,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];

    /// A server's reply with the given options (code, data), for `xid` and [`MAC`].
    fn reply(xid: u32, yiaddr: [u8; 4], options: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out[0] = BOOTREPLY;
        out[4..8].copy_from_slice(&xid.to_be_bytes());
        out[16..20].copy_from_slice(&yiaddr);
        out[28..34].copy_from_slice(&MAC);
        out[236..240].copy_from_slice(&MAGIC);
        for (code, data) in options {
            out.push(*code);
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        out.push(OPT_END);
        out
    }

    fn full_ack() -> Vec<u8> {
        reply(
            7,
            [10, 55, 0, 50],
            &[
                (OPT_MESSAGE_TYPE, &[5]),
                (OPT_SERVER_ID, &[10, 55, 0, 1]),
                (OPT_SUBNET_MASK, &[255, 255, 255, 0]),
                (OPT_ROUTER, &[10, 55, 0, 1]),
                (OPT_DNS, &[10, 55, 0, 53, 9, 9, 9, 9]),
                (OPT_LEASE_TIME, &3600u32.to_be_bytes()),
                (OPT_RENEWAL, &1000u32.to_be_bytes()),
                (OPT_REBINDING, &3000u32.to_be_bytes()),
            ],
        )
    }

    #[test]
    fn an_ack_gives_the_lease() {
        let ack = Reply::parse(&full_ack(), 7, &MAC).unwrap();
        assert_eq!(ack.kind, MessageType::Ack);
        assert_eq!(ack.yiaddr, Ipv4Addr::new(10, 55, 0, 50));
        assert_eq!(ack.prefix_len(), 24);
        assert_eq!(ack.routers, [Ipv4Addr::new(10, 55, 0, 1)]);
        assert_eq!(
            ack.dns,
            [Ipv4Addr::new(10, 55, 0, 53), Ipv4Addr::new(9, 9, 9, 9)]
        );
        assert_eq!(ack.server, Some(Ipv4Addr::new(10, 55, 0, 1)));
        let secs = Duration::from_secs;
        assert_eq!(ack.times(), (secs(3600), secs(1000), secs(3000)));
    }

    #[test]
    fn t1_and_t2_default_and_are_kept_in_order() {
        let mut ack = Reply::parse(&full_ack(), 7, &MAC).unwrap();
        ack.renew = None;
        ack.rebind = None;
        let secs = Duration::from_secs;
        assert_eq!(ack.times(), (secs(3600), secs(1800), secs(3150)));
        ack.renew = Some(secs(5000));
        ack.rebind = Some(secs(9000));
        assert_eq!(ack.times(), (secs(3600), secs(1800), secs(3150)));
        ack.lease = Some(secs(u64::from(u32::MAX)));
        assert_eq!(ack.times().0, MAX_LEASE);
    }

    #[test]
    fn another_transaction_or_client_is_not_ours() {
        assert_eq!(Reply::parse(&full_ack(), 8, &MAC), Err(DhcpError::NotOurs));
        let other = [0x02, 0, 0, 0, 0, 0x43];
        assert_eq!(
            Reply::parse(&full_ack(), 7, &other),
            Err(DhcpError::NotOurs)
        );
    }

    #[test]
    fn truncated_and_malformed_options_are_refused() {
        let mut cut = full_ack();
        cut.truncate(cut.len() - 4); // into the rebinding option's data
        assert!(matches!(
            Reply::parse(&cut, 7, &MAC),
            Err(DhcpError::Truncated { .. })
        ));
        let odd = reply(
            7,
            [10, 0, 0, 2],
            &[(OPT_MESSAGE_TYPE, &[5]), (OPT_DNS, &[1, 2, 3])],
        );
        assert_eq!(
            Reply::parse(&odd, 7, &MAC),
            Err(DhcpError::BadLength {
                code: OPT_DNS,
                len: 3
            })
        );
        let mask = reply(
            7,
            [10, 0, 0, 2],
            &[
                (OPT_MESSAGE_TYPE, &[5]),
                (OPT_SUBNET_MASK, &[255, 0, 255, 0]),
            ],
        );
        assert!(matches!(
            Reply::parse(&mask, 7, &MAC),
            Err(DhcpError::BadMask { .. })
        ));
        assert_eq!(
            Reply::parse(&full_ack()[..239], 7, &MAC),
            Err(DhcpError::Short { len: 239 })
        );
        assert_eq!(
            Reply::parse(&vec![0u8; MAX_MESSAGE + 1], 7, &MAC),
            Err(DhcpError::TooLong {
                len: MAX_MESSAGE + 1
            })
        );
    }

    #[test]
    fn an_offer_without_a_server_id_is_incomplete() {
        let offer = reply(7, [10, 0, 0, 2], &[(OPT_MESSAGE_TYPE, &[2])]);
        assert!(matches!(
            Reply::parse(&offer, 7, &MAC),
            Err(DhcpError::Incomplete {
                kind: MessageType::Offer,
                ..
            })
        ));
        let nak = reply(7, [0, 0, 0, 0], &[(OPT_MESSAGE_TYPE, &[6])]);
        assert_eq!(Reply::parse(&nak, 7, &MAC).unwrap().kind, MessageType::Nak);
    }

    #[test]
    fn a_discover_asks_for_a_broadcast_reply_and_the_options_we_use() {
        let discover = Request {
            kind: MessageType::Discover,
            xid: 0x1234_5678,
            mac: MAC,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: None,
            server: None,
            hostname: Some("edge-1".into()),
            secs: 0,
        }
        .encode();
        assert_eq!(discover[0], BOOTREQUEST);
        assert_eq!(&discover[4..8], &0x1234_5678u32.to_be_bytes());
        assert_eq!(&discover[10..12], &BROADCAST_FLAG.to_be_bytes());
        assert_eq!(&discover[28..34], &MAC);
        assert_eq!(&discover[236..240], &MAGIC);
        assert_eq!(&discover[240..243], &[OPT_MESSAGE_TYPE, 1, 1]);
        assert!(discover.len() >= 300);
        let text = discover.windows(6).any(|w| w == b"edge-1");
        assert!(text);
    }
}
