//! The machine API (`skerry.machine.v1`) generated for tonic from the `.proto` files
//! beside this crate. The files are the contract; this crate only compiles them.

/// `skerry.machine.v1`: messages, the `MachineService` client and server.
pub mod machine {
    /// Version 1 of the machine API.
    pub mod v1 {
        #![allow(
            missing_docs,
            missing_debug_implementations,
            clippy::all,
            clippy::pedantic
        )]
        tonic::include_proto!("skerry.machine.v1");
    }
}

/// `skerry.fleet.v1`: device check-ins with the update server.
pub mod fleet {
    /// Version 1 of the fleet API.
    pub mod v1 {
        #![allow(
            missing_docs,
            missing_debug_implementations,
            clippy::all,
            clippy::pedantic
        )]
        tonic::include_proto!("skerry.fleet.v1");
    }
}

/// The fleet API's `.proto` files, relative to [`PROTO_DIR`].
pub const FLEET_PROTOS: &[&str] = &[
    "skerry/fleet/v1/fleet.proto",
    "skerry/fleet/v1/enrollment.proto",
];

/// Where the `.proto` files live, for tools that generate other clients from them.
pub const PROTO_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The machine API's `.proto` files, relative to [`PROTO_DIR`].
pub const MACHINE_PROTOS: &[&str] = &["skerry/machine/v1/machine.proto"];

/// The encoded `FileDescriptorSet` of the machine API (prost-types can decode it).
pub const MACHINE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/machine_descriptor.bin"));

/// The API package the server speaks.
pub const MACHINE_API_PACKAGE: &str = "skerry.machine.v1";
