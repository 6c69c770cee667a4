//! Compiles the project's protos with protox (pure Rust) so that no machine
//! needs `protoc`; the encoded descriptor set feeds server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["grpcdoc/echo/v1/echo.proto", "helloworld/helloworld.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed=proto/{p}");
    }
    // `grpcdoc --version` names the commit it was built from, when known.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=GRPCDOC_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    peers_cfg();
    chromium_cfg();
    toxiproxy_clients_cfg();
    capture_tools_cfg();
    shipped_scenarios()?;
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("grpcdoc_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}

/// Reruns the build script when `path` changes, or when it appears: a path
/// that does not exist is watched through the nearest folder above it that
/// does (cargo takes a missing file for a change on every build, which
/// rebuilt the crate each time).
fn watch(path: &std::path::Path) {
    let mut p = path;
    while !p.exists() {
        match p.parent() {
            Some(up) if !up.as_os_str().is_empty() => p = up,
            _ => return,
        }
    }
    println!("cargo:rerun-if-changed={}", p.display());
}

/// `cfg(grpcdoc_peers)` when the real gRPC peers are built (`PEERS_HOME`,
/// see ../shared/peers) or required (`GRPCDOC_REQUIRE_PEERS=1`, as in CI):
/// without it the tests that need them are compiled as ignored, and
/// `cargo test` lists each one as "ignored, needs the gRPC peers".
fn peers_cfg() {
    println!("cargo::rustc-check-cfg=cfg(grpcdoc_peers)");
    println!("cargo:rerun-if-env-changed=PEERS_HOME");
    println!("cargo:rerun-if-env-changed=GRPCDOC_REQUIRE_PEERS");
    let home = std::env::var_os("PEERS_HOME").map(PathBuf::from);
    if let Some(h) = &home {
        // Peers built after this build show up as a change here.
        watch(&h.join("bin"));
    }
    let found = home.is_some_and(|h| h.join("bin").join("gogrpc-server").exists());
    let required = std::env::var("GRPCDOC_REQUIRE_PEERS").as_deref() == Ok("1");
    if found || required {
        println!("cargo:rustc-cfg=grpcdoc_peers");
    }
}

/// `cfg(grpcdoc_chromium)` when Debian's headless Chromium is installed
/// (`/usr/bin/chromium`) or required (`GRPCDOC_REQUIRE_CHROMIUM=1`, as in
/// CI): the HTML report's screenshot test needs it, and is listed as
/// ignored without it.
fn chromium_cfg() {
    println!("cargo::rustc-check-cfg=cfg(grpcdoc_chromium)");
    println!("cargo:rerun-if-env-changed=GRPCDOC_REQUIRE_CHROMIUM");
    watch(std::path::Path::new("/usr/bin/chromium"));
    let found = std::path::Path::new("/usr/bin/chromium").exists();
    let required = std::env::var("GRPCDOC_REQUIRE_CHROMIUM").as_deref() == Ok("1");
    if found || required {
        println!("cargo:rustc-cfg=grpcdoc_chromium");
    }
}

/// `cfg(grpcdoc_toxiproxy_clients)` when the toxiproxy client libraries are
/// installed (`TOXIPROXY_CLIENTS`, scripts/toxiproxy-clients.sh) or
/// required (`GRPCDOC_REQUIRE_TOXIPROXY_CLIENTS=1`).
fn toxiproxy_clients_cfg() {
    println!("cargo::rustc-check-cfg=cfg(grpcdoc_toxiproxy_clients)");
    println!("cargo:rerun-if-env-changed=TOXIPROXY_CLIENTS");
    println!("cargo:rerun-if-env-changed=GRPCDOC_REQUIRE_TOXIPROXY_CLIENTS");
    let dir = std::env::var_os("TOXIPROXY_CLIENTS").map(PathBuf::from);
    if let Some(d) = &dir {
        watch(d);
    }
    let found = dir.is_some_and(|d| d.join("venv/bin/python").exists());
    let required = std::env::var("GRPCDOC_REQUIRE_TOXIPROXY_CLIENTS").as_deref() == Ok("1");
    if found || required {
        println!("cargo:rustc-cfg=grpcdoc_toxiproxy_clients");
    }
}

/// `cfg(grpcdoc_capture_tools)` when Debian's tcpdump and tshark are
/// installed (`/usr/bin`) or required (`GRPCDOC_REQUIRE_CAPTURE_TOOLS=1`,
/// as in CI): the tests that capture real peers on loopback and compare
/// `grpcdoc pcap` with tshark need them, and are listed as ignored without.
fn capture_tools_cfg() {
    println!("cargo::rustc-check-cfg=cfg(grpcdoc_capture_tools)");
    println!("cargo:rerun-if-env-changed=GRPCDOC_REQUIRE_CAPTURE_TOOLS");
    let tools = ["/usr/bin/tshark", "/usr/bin/tcpdump"].map(std::path::Path::new);
    tools.iter().for_each(|p| watch(p));
    let found = tools.iter().all(|p| p.exists());
    let required = std::env::var("GRPCDOC_REQUIRE_CAPTURE_TOOLS").as_deref() == Ok("1");
    if found || required {
        println!("cargo:rustc-cfg=grpcdoc_capture_tools");
    }
}

/// The shipped scenarios (`scenarios/*.yaml`), built into the binary so an
/// installed grpcdoc runs them by name: a list of `include_str!`s, so the
/// compiler reads each file and a change to one rebuilds.
fn shipped_scenarios() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=scenarios");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut code = String::from(
        "/// Every file in scenarios/, by name.\npub(crate) const ALL: &[Shipped] = &[\n",
    );
    for f in &files {
        let name = f
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("a scenario file name is not UTF-8")?;
        code.push_str(&format!(
            "    Shipped {{ name: {name:?}, text: include_str!({:?}) }},\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("shipped_scenarios.rs"), code)?;
    Ok(())
}
