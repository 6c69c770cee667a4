//! Compiles the project's protos with protox (pure Rust) so that no machine
//! needs `protoc`; the encoded descriptor set feeds server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["grpcdoc/echo/v1/echo.proto", "helloworld/helloworld.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed=proto/{p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("grpcdoc_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
