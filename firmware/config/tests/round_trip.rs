//! Property: config → canonical YAML → config is the identity (services in canonical order),
//! whatever the strings hold (quotes, colons, `#`, words YAML would read as booleans or numbers).

use std::collections::BTreeMap;

use proptest::prelude::*;
use skerry_config::kinds::*;
use skerry_config::{decode, Config};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}",
        Just("true".to_string()),
        Just("null".to_string()),
        Just("0x1F".to_string()),
        Just("1e3".to_string()),
        Just(String::new()),
        "[ -~]{0,16}",
        "\\PC{0,8}",
    ]
}

fn duration() -> impl Strategy<Value = HumanDuration> {
    (0u64..200_000).prop_map(HumanDuration::secs)
}

fn cidr() -> impl Strategy<Value = Cidr> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, p)| Cidr(
            ipnet::IpNet::new(std::net::Ipv4Addr::from(a).into(), p).unwrap()
        )),
        (any::<[u16; 8]>(), 0u8..=128).prop_map(|(a, p)| Cidr(
            ipnet::IpNet::new(std::net::Ipv6Addr::from(a).into(), p).unwrap()
        )),
    ]
}

fn probe() -> impl Strategy<Value = Probe> {
    prop_oneof![
        prop::collection::vec(text(), 0..3).prop_map(|command| Probe::Exec { command }),
        text().prop_map(|address| Probe::Tcp { address }),
        (text(), any::<u16>()).prop_map(|(url, expect_status)| Probe::Http { url, expect_status }),
    ]
}

fn check() -> impl Strategy<Value = HealthCheck> {
    (
        text(),
        probe(),
        duration(),
        duration(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, probe, interval, timeout, success_threshold, failure_threshold, critical)| {
                HealthCheck {
                    name,
                    probe,
                    interval,
                    timeout,
                    success_threshold,
                    failure_threshold,
                    critical,
                }
            },
        )
}

fn service() -> impl Strategy<Value = ServiceConfig> {
    (
        text(),
        prop::collection::vec(text(), 0..3),
        prop::collection::btree_map(text(), text(), 0..3),
        prop::collection::vec(text(), 0..3),
        (
            prop_oneof![
                Just(RestartPolicy::Always),
                Just(RestartPolicy::OnFailure),
                Just(RestartPolicy::Never)
            ],
            duration(),
            duration(),
        ),
        prop::collection::vec(check(), 0..3),
    )
        .prop_map(
            |(
                name,
                command,
                env,
                depends_on,
                (policy, initial_backoff, max_backoff),
                health_checks,
            )| ServiceConfig {
                name,
                command,
                env,
                depends_on,
                restart: Restart {
                    policy,
                    initial_backoff,
                    max_backoff,
                },
                health_checks,
            },
        )
}

fn network() -> impl Strategy<Value = NetworkConfig> {
    let link = (
        text(),
        any::<bool>(),
        prop::collection::vec(cidr(), 0..3),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(name, dhcp, addresses, mtu)| Link {
            name,
            dhcp,
            addresses,
            mtu,
        });
    let route = (
        cidr(),
        any::<[u8; 4]>(),
        proptest::option::of(text()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(destination, g, link, metric)| Route {
            destination,
            gateway: std::net::Ipv4Addr::from(g).into(),
            link,
            metric,
        });
    (
        prop::collection::vec(link, 0..3),
        prop::collection::vec(route, 0..2),
        prop::collection::vec(any::<[u8; 16]>(), 0..3),
        prop::collection::vec(text(), 0..2),
    )
        .prop_map(|(links, routes, servers, search)| NetworkConfig {
            links,
            routes,
            dns: Dns {
                servers: servers
                    .into_iter()
                    .map(|s| std::net::Ipv6Addr::from(s).into())
                    .collect(),
                search,
            },
        })
}

fn config() -> impl Strategy<Value = Config> {
    let machine = (
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        prop::collection::btree_map(text(), text(), 0..3),
    )
        .prop_map(
            |(hostname, machine_id, site, labels): (String, _, _, BTreeMap<_, _>)| MachineConfig {
                hostname,
                identity: Identity {
                    machine_id,
                    site,
                    labels,
                },
            },
        );
    let time = (
        prop::collection::vec(text(), 0..3),
        duration(),
        prop_oneof![
            Just(FloorSource::Persisted),
            Just(FloorSource::BuildTime),
            Just(FloorSource::Off)
        ],
        duration(),
    )
        .prop_map(
            |(servers, poll_interval, source, save_interval)| TimeConfig {
                sntp: Sntp {
                    servers,
                    poll_interval,
                },
                floor: TimeFloor {
                    source,
                    save_interval,
                },
            },
        );
    let device = prop_oneof![
        text().prop_map(|path| WatchdogDevice::Linux { path }),
        (text(), any::<u32>()).prop_map(|(chip, line)| WatchdogDevice::Gpio { chip, line }),
    ];
    let watchdog = (device, duration(), prop::collection::vec(text(), 0..3)).prop_map(
        |(device, timeout, gate)| WatchdogConfig {
            device,
            timeout,
            gate,
        },
    );
    let update = (text(), text(), text(), text(), duration()).prop_map(
        |(repository, trusted_root, board, channel, probation)| UpdateConfig {
            repository,
            trusted_root,
            board,
            channel,
            probation,
        },
    );
    let fleet = (
        text(),
        proptest::option::of(text()),
        prop::collection::btree_map(text(), text(), 0..3),
        proptest::option::of(duration()),
        any::<bool>(),
    )
        .prop_map(
            |(server, channel, labels, poll_interval, accept_offers)| FleetConfig {
                server,
                channel,
                labels,
                poll_interval,
                join: None,
                accept_offers,
            },
        );
    (
        (proptest::option::of(machine), proptest::option::of(fleet)),
        proptest::option::of(network()),
        proptest::option::of(time),
        prop::collection::vec(service(), 0..3),
        proptest::option::of(watchdog),
        proptest::option::of(update),
    )
        .prop_map(
            |((machine, fleet), network, time, mut services, watchdog, update)| {
                services.sort_by(|a, b| a.name.cmp(&b.name));
                Config {
                    machine,
                    network,
                    time,
                    services,
                    watchdog,
                    update,
                    fleet,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn config_survives_yaml(config in config()) {
        let yaml = config.to_yaml();
        let back = decode(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(&back, &config, "{}", yaml);
        prop_assert_eq!(back.to_yaml(), yaml);
    }
}
