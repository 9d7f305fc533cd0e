//! `FleetConfig`: strict decoding and whole-config validation, each problem with its line.

use skerry_config::{decode, decode_with, validate, Kind, Limits};

const MACHINE: &str = "\
apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: dev-1
";

fn with(fleet: &str) -> String {
    format!("{MACHINE}---\napiVersion: skerry.dev/v1alpha1\nkind: FleetConfig\n{fleet}")
}

#[test]
fn a_good_fleet_document_decodes_with_its_defaults_and_round_trips() {
    let text = with("server: http://fleet.example:8470\nlabels:\n  site: mine-7\n");
    let config = decode(&text).unwrap();
    let fleet = config.fleet.as_ref().unwrap();
    assert_eq!(fleet.server, "http://fleet.example:8470");
    assert!(
        fleet.accept_offers,
        "offers are taken unless the operator says not"
    );
    assert_eq!(fleet.channel, None);
    assert_eq!(fleet.poll_interval, None);
    assert_eq!(fleet.labels["site"], "mine-7");
    validate(&config, None).unwrap();
    assert_eq!(decode(&config.to_yaml()).unwrap(), config);
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let text = with("server: http://f:1\npollIntervall: 5m\n");
    let err = decode(&text).unwrap_err().to_string();
    assert!(err.contains("pollIntervall"), "{err}");
    assert!(err.contains("line 8"), "{err}");
}

#[test]
fn every_fleet_problem_is_listed_with_its_line() {
    let text = format!(
        "{}---\napiVersion: skerry.dev/v1alpha1\nkind: UpdateConfig\nrepository: http://r/\ntrustedRoot: /etc/root.json\nboard: pi\nchannel: stable\nprobation: 1m\n",
        with("server: ftp://fleet\nchannel: beta\npollInterval: 1s\njoin: 'http://fleet:8471/?token=x'\nlabels:\n  '': x\n")
    );
    let (config, sources) = decode_with(&text, &Limits::DEFAULT).unwrap();
    let errors = validate(&config, Some(&sources)).unwrap_err();
    let found: Vec<(Kind, &str, Option<usize>)> = errors
        .problems
        .iter()
        .map(|p| (p.document.kind, p.path.as_str(), p.at.map(|(_, l)| l)))
        .collect();
    let expect = [
        (Kind::Fleet, "server", Some(7)),
        (Kind::Fleet, "channel", Some(8)),
        (Kind::Fleet, "pollInterval", Some(9)),
        (Kind::Fleet, "join", Some(10)),
    ];
    for e in &expect {
        assert!(found.contains(e), "missing {e:?} in\n{errors}");
    }
    let text = errors.to_string();
    assert!(
        text.contains("differs from the UpdateConfig's `stable`"),
        "{text}"
    );
    assert!(text.contains("not an http:// or https:// URL"), "{text}");
    assert!(text.contains("labels."), "{text}");
    assert!(text.contains("the join URL is not https://"), "{text}");
}

#[test]
fn a_join_url_is_checked_as_skerryd_parses_it() {
    let (id, secret, ca) = ("0123456789abcdef", "a".repeat(64), "b".repeat(64));
    let good = format!("https://fleet.example:8471/?token={id}.{secret}&ca=sha256:{ca}");
    let config = decode(&with(&format!("server: http://f:1\njoin: '{good}'\n"))).unwrap();
    assert_eq!(
        config.fleet.as_ref().unwrap().join.as_deref(),
        Some(good.as_str())
    );
    validate(&config, None).unwrap();
    for (bad, why) in [
        (
            format!("https://fleet:8471?token={id}.{secret}&ca=sha256:{ca}"),
            "no /?query",
        ),
        (
            format!("https://fleet/?token={id}.{secret}&ca=sha256:{ca}"),
            "no :PORT",
        ),
        (
            format!("https://fleet:0/?token={id}.{secret}&ca=sha256:{ca}"),
            "port `0`",
        ),
        (
            format!("https://fl eet:1/?token={id}.{secret}&ca=sha256:{ca}"),
            "host",
        ),
        (
            format!("https://fleet:1/?token={id}&ca=sha256:{ca}"),
            "ID.SECRET",
        ),
        (format!("https://fleet:1/?token={id}.{secret}"), "no ca="),
        (format!("https://fleet:1/?ca=sha256:{ca}"), "no token="),
        (
            format!(
                "https://fleet:1/?token={id}.{secret}&ca=sha256:{}",
                "B".repeat(64)
            ),
            "ca= is not",
        ),
        (
            format!("https://fleet:1/?token={id}.{secret}&ca=sha256:{ca}&x=1"),
            "neither",
        ),
        (
            format!(
                "https://{}:1/?token={id}.{secret}&ca=sha256:{ca}",
                "h".repeat(500)
            ),
            "512",
        ),
    ] {
        let config = decode(&with(&format!("server: http://f:1\njoin: '{bad}'\n"))).unwrap();
        let err = validate(&config, None).unwrap_err().to_string();
        assert!(err.contains(why) && err.contains("join"), "{bad}: {err}");
    }
}

#[test]
fn too_many_labels_are_refused() {
    let labels: String = (0..40).map(|i| format!("  k{i}: v\n")).collect();
    let config = decode(&with(&format!("server: http://f:1\nlabels:\n{labels}"))).unwrap();
    let err = validate(&config, None).unwrap_err().to_string();
    assert!(err.contains("40 labels, more than 32"), "{err}");
}
