//! Compiles the machine API with protox (a protobuf compiler in Rust, so no system
//! `protoc`) and generates the tonic client and server from its descriptors.

use std::error::Error;
use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "skerry/machine/v1/machine.proto",
    "skerry/fleet/v1/fleet.proto",
    "skerry/fleet/v1/enrollment.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    // Kept for tests and tools that need the methods as data (the server's role table
    // is checked against it).
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("machine_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
