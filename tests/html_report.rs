//! The HTML report as a person looks at it: the page of a shipped scenario
//! rendered by headless Chromium (Debian's `chromium`) to a PNG - it loads
//! with no console message, draws the connection lanes in their colours,
//! and asks for nothing over the network. Needs /usr/bin/chromium (listed
//! as ignored without it; `.ci/run` installs it and requires it).

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");
const CHROMIUM: &str = "/usr/bin/chromium";

/// Headless Chromium as the machine's notes start it: no sandbox (root),
/// no GPU, no background requests, a fresh profile.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

/// Pixels of this colour (within a little), in an RGB(A) PNG.
fn pixels_of(png_path: &Path, rgb: (u8, u8, u8)) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| {
            p.len() >= 3
                && p[0].abs_diff(rgb.0) <= 6
                && p[1].abs_diff(rgb.1) <= 6
                && p[2].abs_diff(rgb.2) <= 6
        })
        .count()
}

#[test]
#[cfg_attr(
    not(grpcdoc_chromium),
    ignore = "needs Debian's headless Chromium: apt-get install chromium"
)]
fn the_scenario_page_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("restart.html");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/restart.yaml");
    let out = Command::new(BIN)
        .args(["scenario", scenario, "--report"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
    // Self-contained: no script, nothing fetched.
    for needle in ["<script", " src=", " href=", "@import", "url("] {
        assert!(!html.contains(needle), "the page has {needle}");
    }

    let shot = dir.path().join("restart.png");
    let profile = dir.path().join("profile");
    let out = chromium(
        &profile,
        &[
            "--window-size=1240,1400",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", page.display()),
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed:\n{log}");
    assert!(shot.exists(), "no screenshot:\n{log}");
    // The page's own console says nothing (Chromium logs its messages as
    // CONSOLE lines).
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "{console:#?}");
    // READY lanes (green) and the PASS badges (dark green) are drawn.
    let ready = pixels_of(&shot, (0x4c, 0xaf, 0x50));
    assert!(ready > 2000, "{ready} READY pixels");
    let pass = pixels_of(&shot, (0x2a, 0x8a, 0x3a));
    assert!(pass > 200, "{pass} PASS pixels");

    // The DOM as Chromium built it: both variants' lanes, the expectations.
    let out = chromium(
        &profile,
        &["--dump-dom", &format!("file://{}", page.display())],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let lanes = dom.matches("class=\"lane\"").count();
    assert!(lanes >= 4, "{lanes} lanes");
    assert!(dom.contains("restart [broken]") && dom.contains("restart [fixed]"));
    assert!(dom.matches(">PASS<").count() >= 8);
    assert!(dom.contains("mark: restarted") || dom.contains(">restarted<"));
}
