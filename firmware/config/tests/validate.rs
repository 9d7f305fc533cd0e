//! Whole-config validation lists every problem at once, each with its document, path and line.

use skerry_config::{decode_with, validate, Kind, Limits};

const EXAMPLE: &str = include_str!("data/example.yaml");

const BROKEN: &str = "\
apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: -bad-
---
apiVersion: skerry.dev/v1alpha1
kind: NetworkConfig
links:
  - name: eth0
    addresses: [10.0.0.0/24]
  - name: eth0
    addresses: [10.0.1.5/24]
routes:
  - destination: 0.0.0.0/0
    gateway: 172.16.0.1
  - destination: 10.9.0.0/16
    gateway: 10.0.1.1
    link: wan9
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: a
command: [/bin/a]
dependsOn: [b, ghost]
healthChecks:
  - name: up
    probe: {tcp: {address: 'localhost:80'}}
    interval: 20m
    critical: true
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: b
command: [/bin/b]
dependsOn: [a]
---
apiVersion: skerry.dev/v1alpha1
kind: WatchdogConfig
device: {linux: {path: /dev/watchdog0}}
timeout: 30s
gate: [a/missing]
---
apiVersion: skerry.dev/v1alpha1
kind: UpdateConfig
repository: ftp://updates
trustedRoot: /var/root.json
board: rpi4
probation: 5m
";

#[test]
fn every_problem_is_listed_with_where() {
    let (config, sources) = decode_with(BROKEN, &Limits::DEFAULT).unwrap();
    let errors = validate(&config, Some(&sources)).unwrap_err();
    let found: Vec<(Kind, Option<&str>, &str, Option<usize>)> = errors
        .problems
        .iter()
        .map(|p| {
            (
                p.document.kind,
                p.document.name.as_deref(),
                p.path.as_str(),
                p.at.map(|(_, line)| line),
            )
        })
        .collect();
    let expect: &[(Kind, Option<&str>, &str, Option<usize>)] = &[
        (Kind::Machine, None, "hostname", Some(3)),
        (Kind::Network, None, "links[0].addresses[0]", Some(9)),
        (Kind::Network, None, "links[1].name", Some(10)),
        (Kind::Network, None, "routes[0].gateway", Some(14)),
        (Kind::Network, None, "routes[1].link", Some(17)),
        (Kind::Service, Some("a"), "dependsOn[1]", Some(23)),
        (Kind::Service, Some("a"), "dependsOn", Some(23)),
        (Kind::Watchdog, None, "gate[0]", Some(40)),
        (Kind::Update, None, "repository", Some(44)),
        (Kind::Update, None, "probation", Some(47)),
    ];
    for e in expect {
        assert!(found.contains(e), "missing {e:?} in\n{errors}");
    }
    assert_eq!(found.len(), expect.len(), "{errors}");
    let text = errors.to_string();
    assert!(text.contains("dependency cycle: a -> b -> a"), "{text}");
    assert!(text.contains("network address"), "{text}");
    assert!(text.contains("gateway 172.16.0.1 is unreachable"), "{text}");
    assert!(text.contains("`a/missing` does not exist"), "{text}");
    assert!(
        text.contains("probation 5m is shorter than the interval 20m"),
        "{text}"
    );
    assert!(text.contains("ServiceConfig `a` (document 2, line 23) `dependsOn[1]`: depends on unknown service `ghost`"), "{text}");
}

#[test]
fn a_missing_machine_document_is_a_problem() {
    let (config, sources) = decode_with("", &Limits::DEFAULT).unwrap();
    let errors = validate(&config, Some(&sources)).unwrap_err();
    assert_eq!(errors.problems.len(), 1);
    assert_eq!(errors.problems[0].document.kind, Kind::Machine);
}

#[test]
fn longer_cycles_are_reported_once() {
    let svc = |n: &str, d: &str| {
        format!("---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: {n}\ncommand: [x]\ndependsOn: [{d}]\n")
    };
    let text = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: h\n{}{}{}{}",
        svc("c", "a"),
        svc("a", "b"),
        svc("b", "c"),
        svc("d", "a")
    );
    let (config, sources) = decode_with(&text, &Limits::DEFAULT).unwrap();
    let errors = validate(&config, Some(&sources)).unwrap_err();
    let cycles: Vec<_> = errors
        .problems
        .iter()
        .filter(|p| p.message.contains("cycle"))
        .map(|p| p.message.clone())
        .collect();
    assert_eq!(cycles, ["dependency cycle: a -> b -> c -> a"], "{errors}");
}

#[test]
fn a_gateway_on_a_dhcp_link_is_accepted_and_the_example_is_clean() {
    let (config, sources) = decode_with(EXAMPLE, &Limits::DEFAULT).unwrap();
    validate(&config, Some(&sources)).unwrap();
    let mut c = config.clone();
    let net = c.network.as_mut().unwrap();
    net.routes[0].link = Some("wlan0".into());
    net.routes[0].gateway = "10.1.2.3".parse().unwrap();
    validate(&c, None).unwrap();
    c.network.as_mut().unwrap().links[1].dhcp = false;
    let errors = validate(&c, None).unwrap_err();
    assert_eq!(errors.problems.len(), 1, "{errors}");
    assert!(errors.problems[0].message.contains("unreachable"));
}

#[test]
fn what_exec_or_the_resolver_cannot_take_is_a_problem_before_it_is_used() {
    let text = "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: h\n---\napiVersion: skerry.dev/v1alpha1\nkind: NetworkConfig\ndns:\n  search: [a1.example, a2.example, a3.example, a4.example, a5.example, a6.example, a7.example]\n---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: web\ncommand: [/bin/web, \"bad\\0arg\"]\nenv:\n  \"A=B\": x\n  GOOD: \"v\\0\"\n";
    let (config, sources) = decode_with(text, &Limits::DEFAULT).unwrap();
    let errors = validate(&config, Some(&sources)).unwrap_err();
    let paths: Vec<&str> = errors.problems.iter().map(|p| p.path.as_str()).collect();
    for path in ["dns.search", "command[1]", "env.A=B", "env.GOOD"] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
}
