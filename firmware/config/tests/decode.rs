//! Strict decoding: the example decodes; unknown and deprecated keys, type errors and bad
//! headers name the document, the key path and the line.

use skerry_config::{decode, DecodeError};

const EXAMPLE: &str = include_str!("data/example.yaml");

fn field_error(text: &str) -> (usize, String, String, usize, String) {
    match decode(text) {
        Err(DecodeError::Field {
            document,
            path,
            line,
            problem,
            ..
        }) => (document.index, document.kind, path, line, problem),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn example_decodes_and_validates() {
    let (config, sources) =
        skerry_config::decode_with(EXAMPLE, &skerry_config::Limits::DEFAULT).unwrap();
    assert_eq!(config.machine.as_ref().unwrap().hostname, "edge-01");
    assert_eq!(config.services.len(), 2);
    skerry_config::validate(&config, Some(&sources)).unwrap();
}

/// One unknown key per kind: (document text, expected path, expected line).
const UNKNOWN: &[(&str, &str, &str, usize)] = &[
    ("MachineConfig", "hostname: a\nhostnme: b\n", "hostnme", 4),
    ("NetworkConfig", "links:\n  - name: eth0\n    adresses: [10.0.0.2/24]\n", "links[0].adresses", 5),
    ("TimeConfig", "sntp:\n  servers: [a.example]\n  pollIntervall: 1m\n", "sntp.pollIntervall", 5),
    ("ServiceConfig", "name: web\ncommand: [x]\nhealthChecks:\n  - name: h\n    probe:\n      tcp:\n        address: a:1\n        port: 1\n", "healthChecks[0].probe.tcp.port", 10),
    ("WatchdogConfig", "device:\n  linux:\n    path: /dev/watchdog\ntimeout: 10s\nfeed: 1s\n", "feed", 7),
    ("UpdateConfig", "repository: https://u\ntrustedRoot: /r\nboard: b\nprobation: 1m\nchanel: beta\n", "chanel", 7),
];

#[test]
fn unknown_key_names_document_path_and_line_for_every_kind() {
    for (kind, body, path, line) in UNKNOWN {
        // A MachineConfig first so the document under test is document 1.
        let text = format!("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: m\n---\napiVersion: skerry.dev/v1alpha1\nkind: {kind}\n{body}");
        let text = if *kind == "MachineConfig" {
            format!("apiVersion: skerry.dev/v1alpha1\nkind: {kind}\n{body}")
        } else {
            text
        };
        let (index, k, p, l, problem) = field_error(&text);
        let want_index = usize::from(*kind != "MachineConfig");
        let want_line = if *kind == "MachineConfig" {
            *line
        } else {
            line + 4
        };
        assert_eq!(
            (index, k.as_str(), p.as_str()),
            (want_index, *kind, *path),
            "{kind}: {problem}"
        );
        assert_eq!(l, want_line, "{kind}: {problem}");
        assert!(problem.contains("unknown key"), "{problem}");
    }
}

#[test]
fn error_message_reads_well() {
    let err =
        decode("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\nhostnme: b\n")
            .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("document 0 (MachineConfig)"), "{text}");
    assert!(text.contains("`hostnme` at line 4, column 1"), "{text}");
    assert!(text.contains("known keys: hostname, identity"), "{text}");
}

#[test]
fn type_errors_name_the_line() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "kind: NetworkConfig\nlinks:\n  - name: eth0\n    mtu: big\n",
            "links[0].mtu",
            5,
        ),
        (
            "kind: NetworkConfig\nlinks:\n  - name: eth0\n    addresses: [10.0.0.300/24]\n",
            "links[0].addresses[0]",
            5,
        ),
        ("kind: NetworkConfig\nlinks: {name: eth0}\n", "links", 3),
        (
            "kind: WatchdogConfig\ndevice: {linux: {path: /dev/watchdog}}\ntimeout: soon\n",
            "timeout",
            4,
        ),
        (
            "kind: ServiceConfig\nname: a\ncommand: [x]\nrestart: {policy: sometimes}\n",
            "restart.policy",
            5,
        ),
        ("kind: ServiceConfig\nname: a\ncommand: x\n", "command", 4),
        (
            "kind: UpdateConfig\nrepository: https://u\ntrustedRoot: /r\nboard: b\n",
            "",
            1,
        ),
    ];
    for (body, path, line) in cases {
        let text = format!("apiVersion: skerry.dev/v1alpha1\n{body}");
        let (_, _, p, l, problem) = field_error(&text);
        assert_eq!((p.as_str(), l), (*path, *line), "{body}: {problem}");
    }
}

#[test]
fn missing_key_is_named() {
    let text = "apiVersion: skerry.dev/v1alpha1\nkind: UpdateConfig\nrepository: https://u\ntrustedRoot: /r\nboard: b\n";
    let (_, _, _, _, problem) = field_error(text);
    assert!(
        problem.contains("missing required key `probation`"),
        "{problem}"
    );
}

#[test]
fn deprecated_key_is_refused_with_its_replacement() {
    let text = "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\n---\napiVersion: skerry.dev/v1alpha1\nkind: NetworkConfig\nlinks: []\nnameservers: [1.1.1.1]\n";
    match decode(text) {
        Err(DecodeError::Deprecated {
            document,
            path,
            line,
            hint,
            ..
        }) => {
            assert_eq!(
                (document.index, document.kind.as_str(), path.as_str(), line),
                (1, "NetworkConfig", "nameservers", 8)
            );
            assert!(hint.contains("dns.servers"));
        }
        other => panic!("expected deprecated, got {other:?}"),
    }
}

#[test]
fn headers_are_checked() {
    let e = decode("apiVersion: skerry.dev/v1alpha1\nkind: BananaConfig\n").unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::UnknownKind {
                index: 0,
                line: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode("apiVersion: skerry.dev/v2\nkind: MachineConfig\nhostname: a\n").unwrap_err();
    assert!(
        matches!(e, DecodeError::ApiVersion { line: 1, .. }),
        "{e:?}"
    );
    let e = decode("kind: MachineConfig\nhostname: a\n").unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::MissingHeader {
                key: "apiVersion",
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode("- a\n- b\n").unwrap_err();
    assert!(
        matches!(e, DecodeError::NotAMapping { index: 0, .. }),
        "{e:?}"
    );
    let two = "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\n---\napiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: b\n";
    assert!(matches!(
        decode(two).unwrap_err(),
        DecodeError::DuplicateDocument {
            first: 0,
            line: 5,
            ..
        }
    ));
}

#[test]
fn duplicate_keys_and_tags_are_refused_with_lines() {
    let e =
        decode("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\nhostname: b\n")
            .unwrap_err();
    assert_eq!(e.line(), Some(4), "{e}");
    assert!(e.to_string().contains("appears twice"), "{e}");
    assert!(e.to_string().contains("(first at line 3)"), "{e}");
    let e =
        decode("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: !!binary aGk=\n")
            .unwrap_err();
    assert_eq!(e.line(), Some(3), "{e}");
}

#[test]
fn syntax_errors_have_lines() {
    let e =
        decode("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: [a\n").unwrap_err();
    assert!(matches!(e, DecodeError::Yaml(_)), "{e:?}");
    assert!(e.line().is_some(), "{e}");
}

#[test]
fn an_http_probe_takes_expect_status_in_camel_case_as_documented() {
    let text = "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\n---\napiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: web\ncommand: [x]\nhealthChecks:\n  - name: h\n    probe:\n      http:\n        url: http://127.0.0.1:8080/healthz\n        expectStatus: 204\n";
    let config = decode(text).unwrap();
    match &config.services[0].health_checks[0].probe {
        skerry_config::kinds::Probe::Http { expect_status, .. } => assert_eq!(*expect_status, 204),
        other => panic!("{other:?}"),
    }
    let snake = text.replace("expectStatus", "expect_status");
    let (_, _, path, _, _) = field_error(&snake);
    assert_eq!(path, "healthChecks[0].probe.http.expect_status");
}
