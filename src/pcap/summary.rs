//! The end of `grpcdoc pcap` for people: what the capture held, how its
//! connections ended, the calls by status and cause, the catalogue entries
//! named, and a table of the connections.

use super::render::{Renderer, Summary};

fn secs(ms: f64) -> String {
    format!("{:.3}s", ms / 1e3)
}

/// The summary as tables.
pub(crate) fn render(s: &Summary) -> String {
    let st = &s.stats;
    let c = &st.counts;
    let mut t = crate::report::table();
    t.set_header(["capture", ""]);
    let mut row = |k: String, v: String| {
        t.add_row(vec![k, v]);
    };
    row("file".into(), s.file.clone());
    if let Some(ms) = s.start_unix_ms {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros((ms * 1e3) as u64);
        row(
            "first packet".into(),
            humantime::format_rfc3339_millis(at).to_string(),
        );
    }
    row("packets".into(), st.packets.to_string());
    row("duration".into(), secs(s.duration_ms));
    row(
        "connections".into(),
        format!(
            "{} HTTP/2, {} TLS, {} other TCP (not read)",
            c.connections_h2, c.connections_tls, c.connections_other
        ),
    );
    for (reason, n) in &s.closes {
        row(format!("closed: {reason}"), n.to_string());
    }
    for (g, n) in &s.goaways {
        row(format!("GOAWAY {g}"), n.to_string());
    }
    for (code, n) in &s.calls {
        row(format!("calls {code}"), n.to_string());
    }
    for (cause, n) in &s.causes {
        row(format!("failed: {cause}"), n.to_string());
    }
    for (id, n) in &s.entries {
        row(format!("explained: [{id}]"), n.to_string());
    }
    if c.calls_unreadable > 0 {
        row(
            "calls whose headers could not be read".into(),
            c.calls_unreadable.to_string(),
        );
    }
    if c.calls_open_at_end > 0 {
        row(
            "calls open when the capture ended".into(),
            c.calls_open_at_end.to_string(),
        );
    }
    if c.gaps > 0 {
        row(
            "bytes not in the capture".into(),
            format!("{} in {} gaps", c.gap_bytes, c.gaps),
        );
    }
    if c.truncated_bytes > 0 {
        row(
            "bytes cut by the snap length".into(),
            c.truncated_bytes.to_string(),
        );
    }
    for (why, n) in &st.skipped {
        row(format!("packets skipped: {why}"), n.to_string());
    }
    let mut out = format!("{t}\n");
    if s.connections_table.is_empty() {
        return out;
    }
    let mut t = crate::report::table();
    t.set_header([
        "conn", "server", "kind", "lifetime", "calls", "failed", "ended",
    ]);
    for r in s.connections_table.iter().take(Renderer::max_rows()) {
        t.add_row(vec![
            r.conn.to_string(),
            r.server.clone(),
            r.kind.to_string(),
            secs(r.lifetime_ms),
            r.calls.to_string(),
            r.failed_calls.to_string(),
            r.ended.clone(),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    let more = s
        .connections_table
        .len()
        .saturating_sub(Renderer::max_rows());
    if more > 0 {
        out.push_str(&format!("{more} more connections in -o json\n"));
    }
    out
}
