//! The compatibility rules at the top of `fleet.proto`, checked on the compiled
//! descriptors: every enum's zero value is `<ENUM>_UNSPECIFIED`, every value carries its
//! enum's prefix, no message numbers a field twice, every method has its own request.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorSet};

fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn numbers_once(message: &DescriptorProto) {
    let mut seen = BTreeSet::new();
    for field in &message.field {
        assert!(
            seen.insert(field.number()),
            "{}.{}",
            message.name(),
            field.name()
        );
    }
    message.nested_type.iter().for_each(numbers_once);
}

#[test]
fn the_fleet_package_follows_the_rules() {
    // The descriptor set holds every package this crate compiles.
    let set = FileDescriptorSet::decode(skerry_proto::MACHINE_DESCRIPTOR_SET).unwrap();
    let files: Vec<_> = set
        .file
        .iter()
        .filter(|f| f.package() == "skerry.fleet.v1")
        .collect();
    assert_eq!(files.len(), skerry_proto::FLEET_PROTOS.len());
    let mut enums = 0;
    for file in files {
        for e in &file.enum_type {
            let prefix = screaming_snake(e.name());
            let zero = e
                .value
                .iter()
                .find(|v| v.number() == 0)
                .map(|v| v.name().to_owned());
            assert_eq!(zero, Some(format!("{prefix}_UNSPECIFIED")), "{}", e.name());
            assert!(
                e.value
                    .iter()
                    .all(|v| v.name().starts_with(&format!("{prefix}_"))),
                "{}",
                e.name()
            );
            enums += 1;
        }
        file.message_type.iter().for_each(numbers_once);
        for service in &file.service {
            let mut requests = BTreeSet::new();
            for method in &service.method {
                assert!(
                    requests.insert(method.input_type().to_owned()),
                    "{}",
                    method.name()
                );
            }
        }
    }
    assert!(enums >= 4, "{enums} enums");
}
