//! Whole-config validation: every problem at once, each naming its document, key path and,
//! when the config came from YAML, its line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::document::{Config, Kind};
use crate::kinds::{Cidr, NetworkConfig, Probe, ServiceConfig};
use crate::source::{DocKey, SourceMap};

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationProblem {
    /// The document.
    pub document: DocKey,
    /// The key path inside it (`links[0].addresses[1]`), empty for the document itself.
    pub path: String,
    /// The stream index and line, when known.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.document.kind)?;
        if let Some(name) = &self.document.name {
            write!(f, " `{name}`")?;
        }
        if let Some((index, line)) = self.at {
            write!(f, " (document {index}, line {line})")?;
        }
        if !self.path.is_empty() {
            write!(f, " `{}`", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    pub problems: Vec<ValidationProblem>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the config has {} problem(s):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

struct Report<'a> {
    sources: Option<&'a SourceMap>,
    problems: Vec<ValidationProblem>,
}

impl Report<'_> {
    fn add(
        &mut self,
        kind: Kind,
        name: Option<&str>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        let document = DocKey {
            kind,
            name: name.map(str::to_string),
        };
        let path = path.into();
        let at = self
            .sources
            .and_then(|s| s.locate(&document, &path))
            .map(|(i, m)| (i, m.line));
        self.problems.push(ValidationProblem {
            document,
            path,
            at,
            message: message.into(),
        });
    }
}

/// Validates a whole config; `sources` (from [`crate::decode_with`]) adds lines.
pub fn validate(config: &Config, sources: Option<&SourceMap>) -> Result<(), ValidationErrors> {
    let mut r = Report {
        sources,
        problems: Vec::new(),
    };
    machine(config, &mut r);
    if let Some(n) = &config.network {
        network(n, &mut r);
    }
    time(config, &mut r);
    services(&config.services, &mut r);
    watchdog(config, &mut r);
    update(config, &mut r);
    fleet(config, &mut r);
    if r.problems.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors {
            problems: r.problems,
        })
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
pub fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn machine(config: &Config, r: &mut Report<'_>) {
    let Some(m) = &config.machine else {
        r.add(
            Kind::Machine,
            None,
            "",
            "the config has no MachineConfig document (it names the hostname)",
        );
        return;
    };
    if !is_hostname(&m.hostname) {
        r.add(Kind::Machine, None, "hostname", format!("`{}` is not a valid host name (RFC 1123 labels: letters, digits, inner hyphens, up to 63 each)", m.hostname));
    }
}

fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

fn network(n: &NetworkConfig, r: &mut Report<'_>) {
    let k = Kind::Network;
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut addrs: BTreeMap<IpAddr, String> = BTreeMap::new();
    for (i, link) in n.links.iter().enumerate() {
        if let Some(first) = names.insert(&link.name, i) {
            r.add(
                k,
                None,
                format!("links[{i}].name"),
                format!("link `{}` is already defined at links[{first}]", link.name),
            );
        }
        if !is_interface_name(&link.name) {
            r.add(
                k,
                None,
                format!("links[{i}].name"),
                format!(
                    "`{}` is not an interface name (1 to 15 visible characters, no `/` or `:`)",
                    link.name
                ),
            );
        }
        if let Some(mtu) = link.mtu {
            if mtu < 576 {
                r.add(
                    k,
                    None,
                    format!("links[{i}].mtu"),
                    format!("MTU {mtu} is below 576, the least IPv4 allows"),
                );
            }
        }
        for (j, a) in link.addresses.iter().enumerate() {
            let path = format!("links[{i}].addresses[{j}]");
            if let Some(msg) = bad_host_address(a) {
                r.add(k, None, &path, msg);
            }
            if let Some(other) = addrs.insert(a.addr(), path.clone()) {
                r.add(
                    k,
                    None,
                    &path,
                    format!("address {} is also given at {other}", a.addr()),
                );
            }
        }
    }
    for (i, route) in n.routes.iter().enumerate() {
        let links: Vec<_> = match &route.link {
            Some(name) => {
                let found: Vec<_> = n.links.iter().filter(|l| &l.name == name).collect();
                if found.is_empty() {
                    r.add(
                        k,
                        None,
                        format!("routes[{i}].link"),
                        format!("route through unknown link `{name}`"),
                    );
                    continue;
                }
                found
            }
            None => n.links.iter().collect(),
        };
        if route.destination.addr().is_ipv4() != route.gateway.is_ipv4() {
            r.add(
                k,
                None,
                format!("routes[{i}].gateway"),
                format!(
                    "gateway {} is not of the destination's address family",
                    route.gateway
                ),
            );
            continue;
        }
        let on_subnet = links
            .iter()
            .any(|l| l.addresses.iter().any(|a| a.contains(&route.gateway)));
        let dhcp = links.iter().any(|l| l.dhcp);
        if !on_subnet && !dhcp {
            r.add(
                k,
                None,
                format!("routes[{i}].gateway"),
                format!(
                    "gateway {} is unreachable: it is on no subnet of {}",
                    route.gateway,
                    route
                        .link
                        .as_deref()
                        .map_or("any link".to_string(), |l| format!("link `{l}`"))
                ),
            );
        }
    }
    if n.dns.servers.len() > 3 {
        r.add(
            k,
            None,
            "dns.servers",
            format!(
                "{} name servers given; the resolver reads only the first 3",
                n.dns.servers.len()
            ),
        );
    }
    // What a resolver reads of resolv.conf's `search` line (glibc: 6 domains, 256 bytes).
    let search_bytes: usize = n.dns.search.iter().map(|d| d.len() + 1).sum();
    if n.dns.search.len() > 6 || search_bytes > 256 {
        r.add(
            k,
            None,
            "dns.search",
            format!(
                "{} search domains ({search_bytes} bytes) given; the resolver reads at most 6 and 256 bytes",
                n.dns.search.len()
            ),
        );
    }
    for (i, d) in n.dns.search.iter().enumerate() {
        if !is_hostname(d) {
            r.add(
                k,
                None,
                format!("dns.search[{i}]"),
                format!("`{d}` is not a domain name"),
            );
        }
    }
}

fn bad_host_address(a: &Cidr) -> Option<String> {
    let net = a.0;
    match net {
        ipnet::IpNet::V4(v4) if v4.prefix_len() < 31 => {
            if v4.addr() == v4.network() {
                return Some(format!(
                    "{a} is the network address of its subnet, not a host address"
                ));
            }
            if v4.addr() == v4.broadcast() {
                return Some(format!(
                    "{a} is the broadcast address of its subnet, not a host address"
                ));
            }
        }
        _ => {}
    }
    if a.addr().is_unspecified() || a.addr().is_multicast() || a.addr().is_loopback() {
        return Some(format!(
            "{a} cannot be assigned to a link (unspecified, multicast or loopback)"
        ));
    }
    None
}

fn time(config: &Config, r: &mut Report<'_>) {
    let Some(t) = &config.time else { return };
    for (i, s) in t.sntp.servers.iter().enumerate() {
        if s.parse::<IpAddr>().is_err() && !is_hostname(s) {
            r.add(
                Kind::Time,
                None,
                format!("sntp.servers[{i}]"),
                format!("`{s}` is neither a host name nor an address"),
            );
        }
    }
    if t.sntp.poll_interval.0.as_secs() < 16 {
        r.add(
            Kind::Time,
            None,
            "sntp.pollInterval",
            "poll more often than every 16 s and public servers rate-limit us",
        );
    }
    if t.floor.save_interval.0.is_zero() {
        r.add(
            Kind::Time,
            None,
            "floor.saveInterval",
            "a zero save interval would write /var continuously",
        );
    }
}

fn services(list: &[ServiceConfig], r: &mut Report<'_>) {
    let k = Kind::Service;
    let mut seen = BTreeSet::new();
    for s in list {
        let name = Some(s.name.as_str());
        if !seen.insert(s.name.as_str()) {
            r.add(
                k,
                name,
                "name",
                format!("service `{}` is defined twice", s.name),
            );
        }
        if !is_hostname(&s.name) || s.name.contains('.') {
            r.add(
                k,
                name,
                "name",
                format!(
                    "`{}` is not a service name (letters, digits, inner hyphens)",
                    s.name
                ),
            );
        }
        if s.command.is_empty() || s.command[0].is_empty() {
            r.add(k, name, "command", "the command is empty");
        }
        // What exec(2) cannot pass: caught here, not when the service first starts.
        for (i, arg) in s.command.iter().enumerate() {
            if arg.contains('\0') {
                r.add(
                    k,
                    name,
                    format!("command[{i}]"),
                    "an argument cannot hold a NUL byte",
                );
            }
        }
        for (key, value) in &s.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                r.add(
                    k,
                    name,
                    format!("env.{key}"),
                    "an environment variable's name must be non-empty, without `=` or NUL",
                );
            }
            if value.contains('\0') {
                r.add(
                    k,
                    name,
                    format!("env.{key}"),
                    "a value cannot hold a NUL byte",
                );
            }
        }
        for (i, dep) in s.depends_on.iter().enumerate() {
            if dep == &s.name {
                r.add(
                    k,
                    name,
                    format!("dependsOn[{i}]"),
                    "a service cannot depend on itself",
                );
            } else if !list.iter().any(|o| &o.name == dep) {
                r.add(
                    k,
                    name,
                    format!("dependsOn[{i}]"),
                    format!("depends on unknown service `{dep}`"),
                );
            }
        }
        if s.restart.initial_backoff > s.restart.max_backoff {
            r.add(
                k,
                name,
                "restart.initialBackoff",
                format!(
                    "initial backoff {} is longer than the maximum {}",
                    s.restart.initial_backoff, s.restart.max_backoff
                ),
            );
        }
        let mut checks = BTreeSet::new();
        for (i, c) in s.health_checks.iter().enumerate() {
            let at = |f: &str| format!("healthChecks[{i}].{f}");
            if !checks.insert(c.name.as_str()) {
                r.add(
                    k,
                    name,
                    at("name"),
                    format!("health check `{}` is defined twice", c.name),
                );
            }
            if c.interval.0.is_zero() {
                r.add(k, name, at("interval"), "the interval is zero");
            }
            if c.timeout >= c.interval {
                r.add(
                    k,
                    name,
                    at("timeout"),
                    format!(
                        "timeout {} is not shorter than the interval {}",
                        c.timeout, c.interval
                    ),
                );
            }
            if c.success_threshold == 0 || c.failure_threshold == 0 {
                r.add(
                    k,
                    name,
                    at("failureThreshold"),
                    "thresholds count probes and must be at least 1",
                );
            }
            match &c.probe {
                Probe::Exec { command } if command.is_empty() => {
                    r.add(k, name, at("probe.exec.command"), "the command is empty")
                }
                Probe::Tcp { address } if !is_host_port(address) => r.add(
                    k,
                    name,
                    at("probe.tcp.address"),
                    format!("`{address}` is not host:port"),
                ),
                Probe::Http { url, .. } if !url.starts_with("http://") => r.add(
                    k,
                    name,
                    at("probe.http.url"),
                    format!("`{url}` is not an http:// URL"),
                ),
                Probe::Http { expect_status, .. } if !(100..=599).contains(expect_status) => r.add(
                    k,
                    name,
                    at("probe.http.expectStatus"),
                    format!("{expect_status} is not an HTTP status"),
                ),
                _ => {}
            }
        }
    }
    for cycle in dependency_cycles(list) {
        r.add(
            k,
            Some(&cycle[0]),
            "dependsOn",
            format!("dependency cycle: {}", cycle.join(" -> ")),
        );
    }
}

fn is_host_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// Each dependency cycle once, as the names along it with the first repeated at the end.
fn dependency_cycles(list: &[ServiceConfig]) -> Vec<Vec<String>> {
    let deps: BTreeMap<&str, Vec<&str>> = list
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.depends_on
                    .iter()
                    .map(String::as_str)
                    .filter(|d| *d != s.name)
                    .collect(),
            )
        })
        .collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut cycles = Vec::new();
    for start in deps.keys() {
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        let mut on_path: Vec<&str> = vec![start];
        while let Some((node, next)) = stack.last_mut() {
            let children = deps.get(node).map(Vec::as_slice).unwrap_or_default();
            if *next >= children.len() {
                done.insert(node);
                stack.pop();
                on_path.pop();
                continue;
            }
            let child = children[*next];
            *next += 1;
            if let Some(pos) = on_path.iter().position(|n| *n == child) {
                let mut ring: Vec<String> = on_path[pos..].iter().map(|s| s.to_string()).collect();
                // Report a cycle once, starting from its smallest name.
                let min = ring
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.cmp(b.1))
                    .map_or(0, |(i, _)| i);
                ring.rotate_left(min);
                ring.push(ring[0].clone());
                if !cycles.contains(&ring) {
                    cycles.push(ring);
                }
            } else if !done.contains(child) && deps.contains_key(child) {
                stack.push((child, 0));
                on_path.push(child);
            }
        }
    }
    cycles
}

fn find_check<'a>(config: &'a Config, reference: &str) -> Option<&'a crate::kinds::HealthCheck> {
    let (service, check) = reference.split_once('/')?;
    config
        .services
        .iter()
        .find(|s| s.name == service)?
        .health_checks
        .iter()
        .find(|c| c.name == check)
}

fn watchdog(config: &Config, r: &mut Report<'_>) {
    let Some(w) = &config.watchdog else { return };
    let k = Kind::Watchdog;
    let secs = w.timeout.0.as_secs();
    if !(1..=3600).contains(&secs) {
        r.add(
            k,
            None,
            "timeout",
            format!(
                "timeout {} is outside 1s..1h, what watchdog hardware supports",
                w.timeout
            ),
        );
    }
    match &w.device {
        crate::kinds::WatchdogDevice::Linux { path } if !path.starts_with("/dev/") => r.add(
            k,
            None,
            "device.linux.path",
            format!("`{path}` is not a device under /dev"),
        ),
        crate::kinds::WatchdogDevice::Gpio { chip, .. } if !chip.starts_with("/dev/gpiochip") => r
            .add(
                k,
                None,
                "device.gpio.chip",
                format!("`{chip}` is not a GPIO character device (/dev/gpiochipN)"),
            ),
        _ => {}
    }
    for (i, g) in w.gate.iter().enumerate() {
        match find_check(config, g) {
            None => r.add(
                k,
                None,
                format!("gate[{i}]"),
                format!("health check `{g}` does not exist (write service/check)"),
            ),
            Some(c) if c.interval >= w.timeout => r.add(
                k,
                None,
                format!("gate[{i}]"),
                format!(
                    "check `{g}` runs every {}, not within the watchdog timeout {}",
                    c.interval, w.timeout
                ),
            ),
            Some(_) => {}
        }
    }
}

fn update(config: &Config, r: &mut Report<'_>) {
    let Some(u) = &config.update else { return };
    let k = Kind::Update;
    if !["https://", "http://", "file://"]
        .iter()
        .any(|p| u.repository.starts_with(p))
    {
        r.add(
            k,
            None,
            "repository",
            format!(
                "`{}` is not an https://, http:// or file:// URL",
                u.repository
            ),
        );
    }
    if !u.trusted_root.starts_with('/') {
        r.add(
            k,
            None,
            "trustedRoot",
            format!("`{}` is not an absolute path", u.trusted_root),
        );
    }
    if u.board.is_empty() {
        r.add(k, None, "board", "the board is empty");
    }
    if !is_hostname(&u.channel) {
        r.add(
            k,
            None,
            "channel",
            format!(
                "`{}` is not a channel name (letters, digits, hyphens, dots)",
                u.channel
            ),
        );
    }
    for s in &config.services {
        for c in s.health_checks.iter().filter(|c| c.critical) {
            if u.probation < c.interval {
                r.add(
                    k,
                    None,
                    "probation",
                    format!("probation {} is shorter than the interval {} of critical check `{}/{}`: it would never run", u.probation, c.interval, s.name, c.name),
                );
            }
        }
    }
}

fn fleet(config: &Config, r: &mut Report<'_>) {
    use crate::kinds::fleet::{MAX_LABELS, MAX_LABEL_TEXT, MAX_POLL_SECS, MIN_POLL_SECS};
    let Some(f) = &config.fleet else { return };
    let k = Kind::Fleet;
    let host = ["https://", "http://"]
        .iter()
        .find_map(|p| f.server.strip_prefix(p));
    match host {
        None => r.add(
            k,
            None,
            "server",
            format!("`{}` is not an http:// or https:// URL", f.server),
        ),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            r.add(k, None, "server", format!("`{}` names no host", f.server))
        }
        Some(_) => {}
    }
    if let Some(channel) = &f.channel {
        if !is_hostname(channel) {
            r.add(
                k,
                None,
                "channel",
                format!("`{channel}` is not a channel name (letters, digits, hyphens, dots)"),
            );
        }
        if let Some(u) = config.update.as_ref().filter(|u| &u.channel != channel) {
            r.add(
                k,
                None,
                "channel",
                format!(
                    "channel `{channel}` differs from the UpdateConfig's `{}`: offers are taken only within the update channel; drop it or make them agree",
                    u.channel
                ),
            );
        }
    }
    if f.labels.len() > MAX_LABELS {
        r.add(
            k,
            None,
            "labels",
            format!("{} labels, more than {MAX_LABELS}", f.labels.len()),
        );
    }
    for (key, value) in &f.labels {
        if key.is_empty() || key.len() > MAX_LABEL_TEXT || value.len() > MAX_LABEL_TEXT {
            r.add(
                k,
                None,
                format!("labels.{key}"),
                format!("a label key must be 1 to {MAX_LABEL_TEXT} bytes and its value at most {MAX_LABEL_TEXT}"),
            );
        }
    }
    if let Some(poll) = f.poll_interval {
        if !(MIN_POLL_SECS..=MAX_POLL_SECS).contains(&poll.0.as_secs()) {
            r.add(
                k,
                None,
                "pollInterval",
                format!("poll interval {poll} is outside {MIN_POLL_SECS}s..24h"),
            );
        }
    }
    if let Some(join) = &f.join {
        if let Err(why) = join_url_problem(join) {
            r.add(
                k,
                None,
                "join",
                format!("{why} (expected https://HOST:PORT/?token=ID.SECRET&ca=sha256:HEX, as `skerry-server token create --url` prints it)"),
            );
        }
    }
}

/// What is wrong with a join URL, checked as strictly as skerryd parses it.
fn join_url_problem(join: &str) -> Result<(), String> {
    use crate::kinds::fleet::MAX_JOIN_URL;
    if join.len() > MAX_JOIN_URL {
        return Err(format!("the join URL is longer than {MAX_JOIN_URL} bytes"));
    }
    let rest = join
        .strip_prefix("https://")
        .ok_or("the join URL is not https://")?;
    let (authority, query) = rest.split_once("/?").ok_or("the join URL has no /?query")?;
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or("the join URL has no :PORT after its host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
    {
        return Err("the join URL's host is not a name or an address".into());
    }
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("the join URL's port `{port}` is not 1..65535"));
    }
    let (mut token, mut ca) = (None, None);
    for kv in query.split('&') {
        if let Some(t) = kv.strip_prefix("token=") {
            token = Some(t);
        } else if let Some(c) = kv.strip_prefix("ca=") {
            ca = Some(c);
        } else {
            return Err(format!(
                "the join URL has `{}`, neither token= nor ca=",
                kv.chars().take(32).collect::<String>()
            ));
        }
    }
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let token = token.ok_or("the join URL has no token=")?;
    match token.split_once('.') {
        Some((id, secret)) if hex(id, 16) && hex(secret, 64) => {}
        _ => {
            return Err(
                "the join URL's token= is not ID.SECRET (16 and 64 lowercase hex digits)".into(),
            )
        }
    }
    match ca
        .ok_or("the join URL has no ca=sha256:HEX")?
        .strip_prefix("sha256:")
    {
        Some(h) if hex(h, 64) => Ok(()),
        _ => Err("the join URL's ca= is not sha256: and 64 lowercase hex digits".into()),
    }
}
