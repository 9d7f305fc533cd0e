//! Fuzzes the machine config decoder on any text: it gives a config or an error, never a
//! panic; an accepted config validates without panicking and survives its canonical YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((config, sources)) = skerry_config::decode_with(text, &skerry_config::Limits::DEFAULT) else { return };
    let _ = skerry_config::validate(&config, Some(&sources));
    let yaml = config.to_yaml();
    let back = skerry_config::decode(&yaml).unwrap_or_else(|e| panic!("canonical YAML refused: {e}\n{yaml}"));
    assert_eq!(back.to_yaml(), yaml, "canonical YAML is not stable");
});
