//! The files the daemon owns under `etc/`, rendered from the config (and DHCP leases):
//! `hostname`, `hosts`, `resolv.conf`. Rendering is a pure function of its inputs, so
//! the same config always gives the same bytes.

use std::net::IpAddr;

use skerry_config::kinds::{MachineConfig, NetworkConfig};

use crate::resources::DhcpLease;

/// The most name servers written: the libc resolver reads no more (`MAXNS`).
pub const MAX_NAMESERVERS: usize = 3;
/// The most search domains written (the classic libc `MAXDNSRCH`).
pub const MAX_SEARCH_DOMAINS: usize = 6;
/// The longest `search` line's domains, in bytes (the classic libc limit).
pub const MAX_SEARCH_BYTES: usize = 256;
/// The most addresses listed for the machine's own name in `hosts`.
pub const MAX_HOST_ADDRESSES: usize = 64;
/// The longest rendered file: anything longer is refused (and the old file kept).
pub const MAX_RENDERED_BYTES: usize = 16 * 1024;
/// The longest host or domain name (RFC 1035).
pub const MAX_NAME: usize = 253;

const HEADER: &str = "# Rendered by skerryd from the machine config; edits here are overwritten.\n";

/// One rendered file: its name under `etc/` and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `hostname`, `hosts` or `resolv.conf`.
    pub name: &'static str,
    /// The bytes to write.
    pub content: String,
}

/// Why a file could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A name that would break the file's syntax.
    #[error("{what} `{name}` cannot be rendered: {why}")]
    BadName {
        /// Which name ("the hostname", "search domain").
        what: &'static str,
        /// The name, cut to [`MAX_NAME`] bytes.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The file came out longer than [`MAX_RENDERED_BYTES`].
    #[error("{name} would be {len} bytes, more than the limit of {MAX_RENDERED_BYTES}")]
    TooLong {
        /// Which file.
        name: &'static str,
        /// How long it came out.
        len: usize,
    },
}

fn check_name(what: &'static str, name: &str) -> Result<(), RenderError> {
    let bad = |why| RenderError::BadName {
        what,
        name: name.chars().take(MAX_NAME).collect(),
        why,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_NAME {
        return Err(bad("it is longer than 253 bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(bad(
            "only letters, digits, hyphens and dots may appear in it",
        ));
    }
    Ok(())
}

fn bounded(name: &'static str, content: String) -> Result<Rendered, RenderError> {
    if content.len() > MAX_RENDERED_BYTES {
        return Err(RenderError::TooLong {
            name,
            len: content.len(),
        });
    }
    Ok(Rendered { name, content })
}

/// `etc/hostname`: the hostname and a newline.
pub fn hostname(machine: &MachineConfig) -> Result<Rendered, RenderError> {
    check_name("the hostname", &machine.hostname)?;
    bounded("hostname", format!("{}\n", machine.hostname))
}

/// `etc/hosts`: the loopback names, and the machine's hostname on each of its static
/// addresses (or on 127.0.1.1 when it has none, as Debian does), in config order.
pub fn hosts(
    machine: Option<&MachineConfig>,
    network: Option<&NetworkConfig>,
) -> Result<Rendered, RenderError> {
    let mut out = String::from(HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(machine) = machine {
        check_name("the hostname", &machine.hostname)?;
        let mut addresses: Vec<IpAddr> = Vec::new();
        for link in network.map(|n| n.links.as_slice()).unwrap_or_default() {
            for cidr in &link.addresses {
                let addr = cidr.addr();
                if !addresses.contains(&addr) && addresses.len() < MAX_HOST_ADDRESSES {
                    addresses.push(addr);
                }
            }
        }
        if addresses.is_empty() {
            addresses.push(IpAddr::from([127, 0, 1, 1]));
        }
        for addr in addresses {
            out.push_str(&format!("{addr}\t{}\n", machine.hostname));
        }
    }
    bounded("hosts", out)
}

/// `etc/resolv.conf`: the config's name servers, then those of the leases of links that
/// ask for DHCP (in link order), without repeats and at most [`MAX_NAMESERVERS`]; the
/// config's search domains, at most [`MAX_SEARCH_DOMAINS`] and [`MAX_SEARCH_BYTES`].
pub fn resolv_conf(
    network: Option<&NetworkConfig>,
    leases: &[DhcpLease],
) -> Result<Rendered, RenderError> {
    let mut servers: Vec<IpAddr> = Vec::new();
    let mut search: Vec<&str> = Vec::new();
    if let Some(network) = network {
        let from_leases = network
            .links
            .iter()
            .filter(|link| link.dhcp)
            .flat_map(|link| leases.iter().filter(move |l| l.link == link.name))
            .flat_map(|lease| lease.dns.iter());
        for server in network.dns.servers.iter().chain(from_leases) {
            if !servers.contains(server) && servers.len() < MAX_NAMESERVERS {
                servers.push(*server);
            }
        }
        let mut bytes = 0;
        for domain in &network.dns.search {
            check_name("search domain", domain)?;
            if search.contains(&domain.as_str()) {
                continue;
            }
            let more = domain.len() + usize::from(!search.is_empty());
            if search.len() == MAX_SEARCH_DOMAINS || bytes + more > MAX_SEARCH_BYTES {
                break;
            }
            bytes += more;
            search.push(domain);
        }
    }
    let mut out = String::from(HEADER);
    for server in &servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    bounded("resolv.conf", out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(yaml: serde_json::Value) -> NetworkConfig {
        serde_json::from_value(yaml).expect("a network config")
    }

    fn machine(name: &str) -> MachineConfig {
        serde_json::from_value(serde_json::json!({ "hostname": name })).expect("a machine")
    }

    #[test]
    fn hosts_lists_static_addresses_once_in_order() {
        let net = network(serde_json::json!({
            "links": [
                {"name": "eth0", "addresses": ["192.168.1.10/24", "fd00::5/64"]},
                {"name": "eth1", "addresses": ["192.168.1.10/24", "10.0.0.2/8"]}
            ]
        }));
        let hosts = hosts(Some(&machine("edge-1")), Some(&net)).unwrap();
        let lines: Vec<&str> = hosts.content.lines().skip(3).collect();
        assert_eq!(
            lines,
            [
                "192.168.1.10\tedge-1",
                "fd00::5\tedge-1",
                "10.0.0.2\tedge-1"
            ]
        );
    }

    #[test]
    fn hosts_without_static_addresses_uses_127_0_1_1() {
        let hosts = hosts(Some(&machine("edge-1")), None).unwrap();
        assert!(
            hosts.content.ends_with("127.0.1.1\tedge-1\n"),
            "{}",
            hosts.content
        );
        let anonymous = super::hosts(None, None).unwrap();
        assert!(!anonymous.content.contains("127.0.1.1"));
    }

    #[test]
    fn a_hostname_with_a_newline_is_refused_not_rendered() {
        let err = hostname(&machine("edge\n10.0.0.1 bank")).unwrap_err();
        assert!(err.to_string().contains("the hostname"), "{err}");
    }

    #[test]
    fn resolv_conf_takes_config_servers_then_dhcp_lease_servers_up_to_three() {
        let net = network(serde_json::json!({
            "links": [{"name": "eth0", "dhcp": true}, {"name": "eth1"}],
            "dns": {"servers": ["1.1.1.1", "9.9.9.9"], "search": ["lan", "example.com", "lan"]}
        }));
        let lease = |link: &str, dns: [[u8; 4]; 2]| DhcpLease {
            link: link.into(),
            address: "192.168.1.50/24".parse().unwrap(),
            routers: vec![],
            dns: dns.iter().map(|d| IpAddr::from(*d)).collect(),
            server: IpAddr::from([192, 168, 1, 1]),
            acquired: std::time::UNIX_EPOCH,
            lease: std::time::Duration::from_secs(3600),
            renew: std::time::Duration::from_secs(1800),
            rebind: std::time::Duration::from_secs(3150),
        };
        // eth1 does not ask for DHCP: its lease (stale) is not used.
        let leases = [
            lease("eth1", [[8, 8, 8, 8], [8, 8, 4, 4]]),
            lease("eth0", [[9, 9, 9, 9], [192, 168, 1, 1]]),
        ];
        let conf = resolv_conf(Some(&net), &leases).unwrap();
        let lines: Vec<&str> = conf.content.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "nameserver 1.1.1.1",
                "nameserver 9.9.9.9",
                "nameserver 192.168.1.1",
                "search lan example.com"
            ]
        );
    }

    #[test]
    fn search_domains_are_bounded() {
        let many: Vec<String> = (0..20).map(|i| format!("d{i}.example")).collect();
        let net = network(serde_json::json!({ "dns": { "search": many } }));
        let conf = resolv_conf(Some(&net), &[]).unwrap();
        let search = conf
            .content
            .lines()
            .find(|l| l.starts_with("search"))
            .unwrap();
        assert_eq!(search.split(' ').count() - 1, MAX_SEARCH_DOMAINS);
    }
}
