//! The shipped scenarios, built into the binary (build.rs lists
//! `scenarios/*.yaml` as `include_str!`s): `grpcdoc scenario restart` runs
//! one from any directory, `--list` lists them, `--show` prints one.

/// A shipped scenario file.
#[derive(Debug)]
pub struct Shipped {
    /// The file name without `.yaml`.
    pub name: &'static str,
    pub text: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/shipped_scenarios.rs"));

impl Shipped {
    /// The path it has in the repository (what errors and reports show).
    pub fn path(&self) -> String {
        format!("scenarios/{}.yaml", self.name)
    }
}

/// Every shipped scenario, by name.
pub fn all() -> &'static [Shipped] {
    ALL
}

/// The shipped scenario named `name` (`restart`).
pub fn by_name(name: &str) -> Option<&'static Shipped> {
    ALL.iter().find(|s| s.name == name)
}

/// The shipped scenario a path that does not exist names by its file name
/// (`restart.yaml`, `scenarios/restart.yaml`, as the docs write them).
pub fn by_path(path: &std::path::Path) -> Option<&'static Shipped> {
    let ext = path.extension().and_then(|e| e.to_str());
    if !matches!(ext, Some("yaml" | "yml")) {
        return None;
    }
    by_name(path.file_stem()?.to_str()?)
}

/// The names, for messages: `restart, scale-down, ...`.
pub fn names() -> String {
    ALL.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}
