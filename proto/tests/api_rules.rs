//! The compatibility rules at the top of `machine.proto`, checked on the compiled
//! descriptors: every enum's zero value is `<ENUM>_UNSPECIFIED`, every enum value is
//! prefixed by its enum's name, and no message reuses a field number.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorSet};

fn machine_files() -> Vec<prost_types::FileDescriptorProto> {
    let set = FileDescriptorSet::decode(skerry_proto::MACHINE_DESCRIPTOR_SET).unwrap();
    set.file
        .into_iter()
        .filter(|f| f.package() == skerry_proto::MACHINE_API_PACKAGE)
        .collect()
}

/// `HealthStatus` → `HEALTH_STATUS`.
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

#[test]
fn every_enum_starts_with_unspecified_and_prefixes_its_values() {
    let files = machine_files();
    assert!(!files.is_empty());
    let mut seen = 0;
    for file in &files {
        for e in &file.enum_type {
            let prefix = screaming_snake(e.name());
            let zero = e.value.iter().find(|v| v.number() == 0);
            assert_eq!(
                zero.map(|v| v.name().to_owned()),
                Some(format!("{prefix}_UNSPECIFIED")),
                "enum {}",
                e.name()
            );
            for v in &e.value {
                assert!(v.name().starts_with(&format!("{prefix}_")), "{}", v.name());
            }
            seen += 1;
        }
    }
    assert!(seen >= 8, "{seen} enums");
}

fn check_fields(message: &DescriptorProto) {
    let mut numbers = BTreeSet::new();
    for field in &message.field {
        assert!(
            numbers.insert(field.number()),
            "{}.{} reuses field number {}",
            message.name(),
            field.name(),
            field.number()
        );
    }
    message.nested_type.iter().for_each(check_fields);
}

#[test]
fn every_message_numbers_its_fields_once_and_every_method_has_its_own_messages() {
    for file in machine_files() {
        file.message_type.iter().for_each(check_fields);
        for service in &file.service {
            let mut requests = BTreeSet::new();
            for method in &service.method {
                // A request type shared by two methods could never grow a field for one.
                assert!(
                    requests.insert(method.input_type().to_owned()),
                    "{} shares its request type {}",
                    method.name(),
                    method.input_type()
                );
            }
        }
    }
}
