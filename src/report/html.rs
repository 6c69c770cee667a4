//! The HTML report (`--report FILE.html`): one self-contained page, no
//! script and no request of its own - inline CSS and SVG, details on hover
//! from SVG titles. A scenario's page draws each run as a timeline (lanes
//! per connection, marks for GOAWAY, PING, RST_STREAM, close and failed
//! calls, the steps and marks as vertical lines) above its expectations; a
//! load's page draws calls/s and latency percentiles over time above its
//! tables. Written with maud, which escapes every value.

use maud::{html, Markup, DOCTYPE};

use super::scenario::ScenarioResult;
use super::timeline::{LaneState, MarkKind, Timeline, MAX_LANES};
use crate::load::report::LoadReport;
use crate::scenario::expect::Comparison;

const CSS: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px}
.sub{color:#666;margin-bottom:12px}
.pass{color:#fff;background:#2a8a3a;padding:1px 6px;border-radius:3px;font-weight:600}
.fail{color:#fff;background:#c62828;padding:1px 6px;border-radius:3px;font-weight:600}
.warn{color:#000;background:#f0b400;padding:1px 6px;border-radius:3px;font-weight:600}
.about{font-style:italic;max-width:60em}
.verdict{font-weight:600}
table{border-collapse:collapse;margin:8px 0 16px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
svg{display:block;margin:8px 0;background:#fcfcfc;border:1px solid #e4e4e4}
.scroll{overflow-x:auto;max-width:100%}
svg text{font:11px system-ui,sans-serif;fill:#333}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
";

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (maud::PreEscaped(CSS)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

fn secs(ms: f64) -> String {
    if ms >= 60_000.0 {
        format!(
            "{:.0}m{:02.0}s",
            (ms / 60_000.0).floor(),
            (ms % 60_000.0) / 1e3
        )
    } else {
        format!("{:.2}s", ms / 1e3)
    }
}

/// A tick step that gives at most about ten ticks over `span`.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 3e4, 6e4, 3e5,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 10.0)
        .unwrap_or(span / 10.0)
}

const W: f64 = 1160.0;
const LABEL_W: f64 = 300.0;
const LANE_H: f64 = 20.0;
const TOP: f64 = 48.0;

fn state_color(s: LaneState) -> &'static str {
    match s {
        LaneState::Ready => "#4caf50",
        LaneState::Draining => "#ffa726",
        LaneState::TransientFailure => "#f4b4b4",
    }
}

fn state_name(s: LaneState) -> &'static str {
    match s {
        LaneState::Ready => "READY",
        LaneState::Draining => "draining (after GOAWAY)",
        LaneState::TransientFailure => "TRANSIENT_FAILURE (calls fail fast)",
    }
}

/// About how wide a label is drawn (px).
fn text_w(s: &str) -> f64 {
    6.2 * s.chars().count() as f64
}

/// A lane label cut to the label column, with an ellipsis.
fn fit_label(s: &str) -> String {
    let room = ((LABEL_W - 12.0) / 6.2) as usize;
    if s.chars().count() <= room {
        return s.to_string();
    }
    let mut out: String = s.chars().take(room.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn mark(kind: MarkKind, x: f64, y: f64, detail: &str) -> Markup {
    let mid = y + LANE_H / 2.0;
    html! {
        @match kind {
            MarkKind::Goaway => polygon class="mark goaway" points=(format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", x - 5.0, y + 1.0, x + 5.0, y + 1.0, x, y + 9.0)) fill="#d32f2f" { title { (detail) } },
            MarkKind::Ping => circle class="mark ping" cx=(format!("{x:.1}")) cy=(format!("{mid:.1}")) r="2.5" fill="#607d8b" { title { (detail) } },
            MarkKind::Reset => path class="mark reset" d=(format!("M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}", x - 4.0, mid - 4.0, x + 4.0, mid + 4.0, x - 4.0, mid + 4.0, x + 4.0, mid - 4.0)) stroke="#8e24aa" stroke-width="2" { title { (detail) } },
            MarkKind::Close => rect class="mark close" x=(format!("{:.1}", x - 1.0)) y=(format!("{:.1}", y + 2.0)) width="2.5" height=(format!("{:.1}", LANE_H - 4.0)) fill="#212121" { title { (detail) } },
            MarkKind::FailedCall => rect class="mark failed" x=(format!("{:.1}", x - 1.5)) y=(format!("{:.1}", y + LANE_H - 7.0)) width="3" height="6" fill="#c62828" { title { (detail) } },
            MarkKind::ConnectFailed => rect class="mark connect-failed" x=(format!("{:.1}", x - 1.5)) y=(format!("{:.1}", y + 3.0)) width="3" height="6" fill="#ef6c00" { title { (detail) } },
        }
    }
}

/// The timeline as SVG: lanes, marks, steps and marks as vertical lines.
pub fn timeline_svg(t: &Timeline) -> Markup {
    let dur = t.duration_ms.max(1.0);
    let plot_w = W - LABEL_W - 16.0;
    let x = |ms: f64| LABEL_W + (ms.clamp(0.0, dur) / dur) * plot_w;
    // Each vertical line's label goes in the first row where it does not
    // run into the label before it (about 6 px a character).
    let mut row_ends: Vec<f64> = Vec::new();
    let rows: Vec<usize> = t
        .lines
        .iter()
        .map(|l| {
            let lx = x(l.t_ms);
            // A label that would run past the right edge is drawn leftwards.
            let (start, end) = if lx + 3.0 + text_w(&l.label) > W {
                (lx - 3.0 - text_w(&l.label), lx)
            } else {
                (lx, lx + text_w(&l.label) + 8.0)
            };
            let lx = start;
            match row_ends.iter().position(|e| *e <= lx) {
                Some(r) => {
                    row_ends[r] = end;
                    r
                }
                None => {
                    row_ends.push(end);
                    row_ends.len() - 1
                }
            }
        })
        .collect();
    let top = TOP.max(8.0 + row_ends.len() as f64 * 13.0);
    let h = top + t.lanes.len().max(1) as f64 * LANE_H + 28.0;
    let bottom = top + t.lanes.len() as f64 * LANE_H;
    let step = tick_step(dur);
    let ticks: Vec<f64> = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= dur + 1e-6)
        .collect();
    html! {
        // Narrower windows scroll the timeline sideways rather than cut it.
        div class="scroll" {
        svg class="timeline" xmlns="http://www.w3.org/2000/svg" width=(W) height=(format!("{h:.0}")) viewBox=(format!("0 0 {W} {h:.0}")) {
            @for v in &ticks {
                line x1=(format!("{:.1}", x(*v))) x2=(format!("{:.1}", x(*v))) y1=(format!("{top:.1}")) y2=(format!("{bottom:.1}")) stroke="#eee" {}
                text x=(format!("{:.1}", x(*v))) y=(format!("{:.1}", bottom + 16.0)) text-anchor="middle" { (secs(*v)) }
            }
            @for (i, lane) in t.lanes.iter().enumerate() {
                @let y = top + i as f64 * LANE_H;
                g class="lane" {
                    @if i % 2 == 1 {
                        rect x="0" y=(format!("{y:.1}")) width=(W) height=(LANE_H) fill="#f6f6f6" {}
                    }
                    text x="6" y=(format!("{:.1}", y + 14.0)) { (fit_label(&lane.label)) title { (lane.label) } }
                    @for s in &lane.segments {
                        rect class=(format!("seg {}", match s.state { LaneState::Ready => "ready", LaneState::Draining => "draining", LaneState::TransientFailure => "transient-failure" })) x=(format!("{:.1}", x(s.from_ms))) y=(format!("{:.1}", y + 5.0)) width=(format!("{:.1}", (x(s.to_ms) - x(s.from_ms)).max(1.0))) height=(format!("{:.1}", LANE_H - 10.0)) fill=(state_color(s.state)) {
                            title { (state_name(s.state)) " " (secs(s.from_ms)) " to " (secs(s.to_ms)) }
                        }
                    }
                    @for m in &lane.marks {
                        (mark(m.kind, x(m.t_ms), y, &format!("{} {}", secs(m.t_ms), m.detail)))
                    }
                }
            }
            @for (l, row) in t.lines.iter().zip(&rows) {
                @let lx = x(l.t_ms);
                @let leftwards = lx + 3.0 + text_w(&l.label) > W;
                g class=(if l.step { "vline step" } else { "vline mark" }) {
                    line x1=(format!("{lx:.1}")) x2=(format!("{lx:.1}")) y1=(format!("{:.1}", 6.0 + *row as f64 * 13.0)) y2=(format!("{bottom:.1}")) stroke=(if l.step { "#1565c0" } else { "#00897b" }) stroke-dasharray=(if l.step { "none" } else { "4 3" }) {}
                    text x=(format!("{:.1}", if leftwards { lx - 3.0 } else { lx + 3.0 })) text-anchor=(if leftwards { "end" } else { "start" }) y=(format!("{:.1}", 14.0 + *row as f64 * 13.0)) fill=(if l.step { "#1565c0" } else { "#00897b" }) {
                        (l.label)
                        title { (secs(l.t_ms)) " " (l.label) }
                    }
                }
            }
        }
        }
        p class="legend" {
            span { span.sw style="background:#4caf50" {} "READY" }
            span { span.sw style="background:#ffa726" {} "draining after GOAWAY" }
            span { span.sw style="background:#f4b4b4" {} "channel in TRANSIENT_FAILURE" }
            span { span.sw style="background:#d32f2f" {} "GOAWAY" }
            span { span.sw style="background:#607d8b" {} "PING" }
            span { span.sw style="background:#8e24aa" {} "RST_STREAM" }
            span { span.sw style="background:#212121" {} "closed" }
            span { span.sw style="background:#c62828" {} "failed call" }
            span { span.sw style="background:#ef6c00" {} "failed connect" }
            span { span.sw style="background:#1565c0" {} "step" }
            span { span.sw style="background:#00897b" {} "mark" }
        }
        @if t.hidden_lanes > 0 {
            p.sub { (t.hidden_lanes) " more connections not drawn (the first " (MAX_LANES) " are)." }
        }
        @if t.lanes.is_empty() {
            p.sub { "No client connection in this run." }
        }
    }
}

/// The page of a scenario run: each result with its timeline, then the
/// variants compared.
pub fn scenario_page(runs: &[(ScenarioResult, Timeline)], comparisons: &[Comparison]) -> String {
    let passed = runs.iter().all(|(r, _)| r.passed);
    let title = runs
        .first()
        .map(|(r, _)| format!("grpcdoc scenario {}", r.name))
        .unwrap_or_else(|| "grpcdoc scenario".into());
    page(
        &title,
        html! {
            h1 { (title) " " @if passed { span.pass { "PASS" } } @else { span.fail { "FAIL" } } }
            p.sub { "grpcdoc " (crate::VERSION) }
            @for (r, t) in runs {
                h2 { (r.title()) " " @if r.passed { span.pass { (r.verdict.outcome.word()) } } @else { span.fail { (r.verdict.outcome.word()) } } }
                @if !r.about.is_empty() { p.about { (r.about) } }
                p.verdict { (r.title()) ": " (r.verdict.sentence) }
                @if let Some(a) = &r.verdict.advice { p { "fix: " (a) } }
                p.sub { (r.file) ", " (secs(r.duration_ms)) ", " (r.events) " events" @if r.interrupted { ", interrupted" } }
                (timeline_svg(t))
                table.expectations {
                    tr { th { "expectation" } th { "result" } th { "found" } th { "diagnosis" } }
                    @for e in &r.expectations {
                        tr {
                            td { (e.check) }
                            td { @if e.passed { span.pass { "PASS" } } @else if e.not_reached { span.warn { "NOT REACHED" } } @else { span.fail { "FAIL" } } }
                            td { (e.value) }
                            td { (e.diagnosis.clone().unwrap_or_default()) }
                        }
                    }
                }
                @if !r.calls.is_empty() {
                    table {
                        tr { th { "client" } th { "calls by status" } }
                        @for (client, codes) in &r.calls {
                            tr {
                                td { (client) }
                                td { (codes.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
            @for c in comparisons {
                h2 { (c.scenario) ": the variants side by side" }
                table {
                    tr { th { "expectation" } @for v in &c.variants { th { (v) } } }
                    @for row in &c.rows {
                        tr {
                            td { (row.measure) }
                            @for cell in &row.cells {
                                td {
                                    @match (&cell.value, cell.passed) {
                                        (None, _) => "-",
                                        (Some(v), None) => (v),
                                        (Some(v), Some(true)) => { span.pass { "PASS" } " " (v) },
                                        (Some(v), Some(false)) if cell.not_reached => { span.warn { "NOT REACHED" } " " (v) },
                                        (Some(v), Some(false)) => { span.fail { "FAIL" } " " (v) },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The page of a packet capture (`grpcdoc pcap --report`): each
/// connection's lane, then the notes and the connections as tables.
/// `entries`: (catalogue entry, notes naming it); `conns`: a row of cells
/// per connection under `head`.
pub fn capture_page(
    title: &str,
    sub: &str,
    t: &Timeline,
    entries: &[(String, u64)],
    head: &[&str],
    conns: &[Vec<String>],
) -> String {
    page(
        title,
        html! {
            h1 { (title) }
            p.sub { (sub) ". grpcdoc " (crate::VERSION) }
            (timeline_svg(t))
            @if !entries.is_empty() {
                h2 { "What the capture shows" }
                table.entries {
                    tr { th { "entry" } th { "notes" } th { "cause" } th { "fix" } }
                    @for (id, n) in entries {
                        @let e = id.parse::<crate::catalogue::EntryId>().ok().map(crate::catalogue::entry);
                        tr {
                            td { (id) }
                            td.num { (n) }
                            td { (e.map(|e| e.cause).unwrap_or("")) }
                            td { (e.map(|e| e.fix).unwrap_or("")) }
                        }
                    }
                }
            }
            h2 { "Connections" }
            table.connections {
                tr { @for h in head { th { (h) } } }
                @for row in conns {
                    tr { @for cell in row { td { (cell) } } }
                }
            }
        },
    )
}

/// One line of a chart: its name, colour and (x, y) points.
type Line<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart of per-second values; `stages` (each stage's start and
/// name) are drawn as vertical lines.
fn chart(title: &str, unit: &str, lines: &[Line<'_>], stages: &[(f64, String)]) -> Markup {
    let (w, h, left, top, bottom) = (W, 220.0, 64.0, 16.0, 30.0);
    let xmax = lines
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let top_value = lines
        .iter()
        .flat_map(|(_, _, v)| v.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9);
    // Gridlines at a round step (1, 2 or 5 times a power of ten).
    let ystep = {
        let raw = top_value / 4.0;
        let pow = 10f64.powf(raw.log10().floor());
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * pow)
            .find(|s| *s >= raw)
            .unwrap_or(raw)
    };
    let ymax = (top_value / ystep).ceil().max(1.0) * ystep;
    let px = |v: f64| left + v / xmax * (w - left - 16.0);
    let py = |v: f64| top + (1.0 - v / ymax) * (h - top - bottom);
    let xstep = tick_step(xmax * 1e3) / 1e3;
    let xticks: Vec<f64> = (0..)
        .map(|i| f64::from(i) * xstep)
        .take_while(|v| *v <= xmax + 1e-9)
        .collect();
    let yticks: Vec<f64> = (0..)
        .map(|i| f64::from(i) * ystep)
        .take_while(|v| *v <= ymax + ystep * 1e-6)
        .collect();
    html! {
        h2 { (title) }
        svg class="chart" xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) {
            @for v in &yticks {
                line x1=(left) x2=(w - 16.0) y1=(format!("{:.1}", py(*v))) y2=(format!("{:.1}", py(*v))) stroke="#eee" {}
                text x=(left - 6.0) y=(format!("{:.1}", py(*v) + 4.0)) text-anchor="end" { (format!("{v:.3}").trim_end_matches('0').trim_end_matches('.')) " " (unit) }
            }
            @for v in &xticks {
                text x=(format!("{:.1}", px(*v))) y=(h - 10.0) text-anchor="middle" { (secs(*v * 1e3)) }
            }
            @for (x, name) in stages {
                line class="stage" x1=(format!("{:.1}", px(*x))) x2=(format!("{:.1}", px(*x))) y1=(top) y2=(h - bottom) stroke="#9e9e9e" stroke-dasharray="4 3" {
                    title { (name) }
                }
            }
            @for (name, color, values) in lines {
                polyline class="series" fill="none" stroke=(color) stroke-width="1.5" points=(values.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect::<Vec<_>>().join(" ")) {
                    title { (name) }
                }
            }
        }
        p.legend {
            @for (name, color, _) in lines {
                span { span.sw style=(format!("background:{color}")) {} (name) }
            }
        }
    }
}

/// The page of a load run.
pub fn load_page(r: &LoadReport) -> String {
    let per_s = |f: fn(&crate::load::stats::SecondStats) -> f64| -> Vec<(f64, f64)> {
        r.series.iter().map(|s| (s.t_s as f64, f(s))).collect()
    };
    let ok_or = |s: &crate::load::stats::SecondStats, v: f64| if s.completed > 0 { v } else { 0.0 };
    let title = format!("grpcdoc load {} on {}", r.method, r.target);
    let stages: Vec<(f64, String)> = r
        .stages
        .iter()
        .map(|s| (s.begins_s, format!("stage {}: {}", s.stage, s.text)))
        .collect();
    page(
        &title,
        html! {
            h1 { (title) " " @if r.failed() { span.fail { "FAIL" } } @else { span.pass { "PASS" } } }
            p.sub {
                (r.total) " calls in " (secs(r.duration_ms)) ", " (format!("{:.0}", r.rps)) " calls/s, "
                (r.errors) " failed (" (format!("{:.2}", r.error_rate * 100.0)) "%), concurrency " (r.concurrency)
                ", connections " (r.connections) ", threads " (r.threads) @if r.interrupted { ", interrupted" }
                ". grpcdoc " (crate::VERSION)
            }
            (chart("Calls per second", "/s", &[
                ("completed", "#1565c0", per_s(|s| s.completed as f64)),
                ("failed", "#c62828", per_s(|s| s.errors as f64)),
            ], &stages))
            (chart("Latency of the calls that ended each second", "ms", &[
                ("p50", "#2e7d32", r.series.iter().map(|s| (s.t_s as f64, ok_or(s, s.p50_ms))).collect()),
                ("p90", "#f9a825", r.series.iter().map(|s| (s.t_s as f64, ok_or(s, s.p90_ms))).collect()),
                ("p99", "#c62828", r.series.iter().map(|s| (s.t_s as f64, ok_or(s, s.p99_ms))).collect()),
            ], &stages))
            @if !r.stages.is_empty() {
                h2 { "Stages" }
                p.sub { "--stages " (r.schedule.as_deref().unwrap_or("")) ": the calls that began in each stage" }
                table.stages {
                    tr { th { "stage" } th { "time, target" } th { "calls" } th { "calls/s" } th { "failed" } th { "p50" } th { "p90" } th { "p99" } }
                    @for st in &r.stages {
                        tr {
                            td.num { (st.stage) }
                            td { (st.text) }
                            td.num { (st.calls) @if let Some(p) = st.planned { " of " (format!("{p:.0}")) " due" } }
                            td.num { (format!("{:.0}", st.rps)) }
                            td.num { (st.errors) }
                            td.num { (format!("{:.2} ms", st.latency_ms.p50)) }
                            td.num { (format!("{:.2} ms", st.latency_ms.p90)) }
                            td.num { (format!("{:.2} ms", st.latency_ms.p99)) }
                        }
                    }
                }
            }
            h2 { "Latency (all calls)" }
            table {
                tr { th { "min" } th { "mean" } th { "p50" } th { "p90" } th { "p99" } th { "p99.9" } th { "max" } }
                tr {
                    @for v in [r.latency_ms.min, r.latency_ms.mean, r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.p99_9, r.latency_ms.max] {
                        td.num { (format!("{v:.2} ms")) }
                    }
                }
            }
            h2 { "Status codes" }
            table.status {
                tr { th { "status" } th { "count" } th { "messages" } }
                @for (code, c) in &r.codes {
                    tr {
                        td { (code) }
                        td.num { (c.count) }
                        td { (c.messages.iter().map(|(m, n)| format!("{n}x {m}")).collect::<Vec<_>>().join("; ")) @if c.other > 0 { " (+" (c.other) " others)" } }
                    }
                }
            }
            @if !r.checks.is_empty() {
                h2 { "Checks (--expect)" }
                table.checks {
                    tr { th { "check" } th { "passed" } th { "failed" } th { "not made (call failed)" } }
                    @for c in &r.checks {
                        tr {
                            td { (c.expect) }
                            td.num { (c.passed) " (" (format!("{:.2}", c.rate() * 100.0)) "%)" }
                            td.num { (c.failed) }
                            td.num { (c.not_made) }
                        }
                    }
                }
            }
            @if !r.causes.is_empty() {
                h2 { "Failures by cause" }
                table.causes {
                    tr { th { "cause" } th { "count" } th { "diagnosis" } th { "entry" } }
                    @for c in &r.causes {
                        tr {
                            td { (c.cause.key()) }
                            td.num { (c.count) }
                            td { (c.diagnosis) }
                            td { (c.id.map_or("", |i| i.as_str())) }
                        }
                    }
                }
            }
            h2 { "Connections" }
            table {
                tr { th { "conn" } th { "address" } th { "calls" } th { "failed" } th { "GOAWAYs" } th { "lifetime" } th { "ended" } }
                @for c in r.connections_table.iter().take(200) {
                    tr {
                        td.num { (c.conn) }
                        td { (c.addr) }
                        td.num { (c.rpcs) }
                        td.num { (c.errors) }
                        td { (c.goaways.iter().map(|(k, n)| format!("{n}x {k}")).collect::<Vec<_>>().join(", ")) }
                        td.num { (secs(c.lifetime_ms)) }
                        td { (c.closed.clone().unwrap_or_default()) }
                    }
                }
            }
            @if r.connections_table.len() > 200 {
                p.sub { (r.connections_table.len() - 200) " more connections in the JSON report." }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_load_is_a_small_page() {
        let series: Vec<crate::load::stats::SecondStats> = (1..=3600)
            .map(|t| crate::load::stats::SecondStats {
                t_s: t,
                completed: 100_000 + t % 977,
                errors: t % 13,
                p50_ms: 1.25,
                p90_ms: 2.5,
                p99_ms: 9.75,
            })
            .collect();
        let conns = (0..5000)
            .map(|i| {
                let mut c = crate::load::report::ConnRow::default();
                c.conn = i;
                c.addr = "10.0.0.1:50051".into();
                c.rpcs = 1000;
                c
            })
            .collect();
        let mut r: LoadReport = serde_json::from_value(serde_json::json!({
            "kind": "load_report", "format": 1, "started_unix_ms": 0.0, "target": "t", "method": "a.B/C",
            "call_kind": "unary", "concurrency": 1, "connections": 1, "duration_ms": 3.6e6,
            "interrupted": false, "total": 1, "ok": 1, "errors": 0, "error_rate": 0.0, "rps": 1.0,
            "responses": 1, "latency_ms": {"min": 1.0, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p99": 1.0, "p99_9": 1.0, "max": 1.0},
            "histogram": "", "codes": {}, "causes": [], "connections_table": [], "connects_failed": 0,
            "calls_without_connection": 0, "retries": 0, "transparent_retries": 0, "slot_waits": 0,
            "slot_wait_ms": 0.0, "rate": null, "cpu": {"user_s": 0.0, "system_s": 0.0, "per_rpc_us": 0.0},
            "series": [], "fail_on": [], "dropped_events": 0
        }))
        .unwrap();
        r.series = series;
        r.connections_table = conns;
        let page = load_page(&r);
        assert!(page.len() < 1_000_000, "{} bytes", page.len());
        assert!(page.contains("class=\"series\""));
    }

    #[test]
    fn stages_are_lines_on_the_charts_and_a_table() {
        let mut r: LoadReport = serde_json::from_value(serde_json::json!({
            "kind": "load_report", "format": 1, "started_unix_ms": 0.0, "target": "t", "method": "a.B/C",
            "call_kind": "unary", "concurrency": 1, "connections": 1, "duration_ms": 2e3,
            "interrupted": false, "total": 1, "ok": 1, "errors": 0, "error_rate": 0.0, "rps": 1.0,
            "responses": 1, "latency_ms": {"min": 1.0, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p99": 1.0, "p99_9": 1.0, "max": 1.0},
            "histogram": "", "codes": {}, "causes": [], "connections_table": [], "connects_failed": 0,
            "calls_without_connection": 0, "retries": 0, "transparent_retries": 0, "slot_waits": 0,
            "slot_wait_ms": 0.0, "rate": null, "cpu": {"user_s": 0.0, "system_s": 0.0, "per_rpc_us": 0.0},
            "series": [], "fail_on": [], "dropped_events": 0
        }))
        .unwrap();
        let schedule = crate::load::stages::Schedule::parse("1s:10,1s:20/s").err();
        assert!(schedule.is_some(), "mixed levels are refused");
        let schedule = crate::load::stages::Schedule::parse("1s:10,1s:20").unwrap();
        r.schedule = Some(schedule.text.clone());
        r.stages = crate::load::report::StageRow::of(&schedule, &[]);
        r.series = (1..=2)
            .map(|t| crate::load::stats::SecondStats {
                t_s: t,
                completed: 10,
                ..Default::default()
            })
            .collect();
        let page = load_page(&r);
        assert_eq!(
            page.matches("class=\"stage\"").count(),
            4,
            "two stages on two charts"
        );
        assert!(
            page.contains("stage 2: 0:01.0-0:02.0 10 -&gt; 20 in flight"),
            "{page}"
        );
        assert!(page.contains("--stages 1s:10,1s:20"));
    }
}
