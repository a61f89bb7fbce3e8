//! Generates the server side of KurrentDB's Streams service from the
//! `.proto` files inside the official client crate (the version this crate
//! depends on), with `protox` (pure Rust: no `protoc` needed).

use std::path::PathBuf;

/// The client version whose protocol files are compiled; kept equal to the
/// `kurrentdb` dependency in Cargo.toml.
const CLIENT: &str = "kurrentdb-1.2.0";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = client_protos()?;
    let files = [protos.join("streams.proto"), protos.join("serverfeatures.proto")];
    let descriptors = protox::compile(files, [&protos])?;
    tonic_build::configure()
        .build_client(false)
        .extern_path(".event_store.client.Empty", "()")
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}

/// The `protos` folder of the client crate in cargo's registry sources.
fn client_protos() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let sources = home.join("registry").join("src");
    for registry in std::fs::read_dir(&sources)? {
        let protos = registry?.path().join(CLIENT).join("protos");
        if protos.join("streams.proto").exists() {
            return Ok(protos);
        }
    }
    Err(format!(
        "{CLIENT} is not unpacked under {}; run `cargo fetch`",
        sources.display()
    )
    .into())
}
