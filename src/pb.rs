//! Code generated from `proto/` by `build.rs`.

pub mod echo {
    tonic::include_proto!("grpcdoc.echo.v1");
}

pub mod helloworld {
    tonic::include_proto!("helloworld");
}

/// Encoded descriptors of `proto/` (and their imports), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/grpcdoc_descriptor.bin"));
