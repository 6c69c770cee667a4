pub mod pb {
    tonic::include_proto!("grpcdoc.echo.v1");
}
fn main() {}
