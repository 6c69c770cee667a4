//! Reaching the server: the target resolved to every address, each dialed
//! in turn until one connects (as pick_first), TCP and TLS timed apart (doctor's dialer, every frame
//! logged), and a failure recorded as a step and explained by the
//! diagnosis.

use crate::diagnose::Explainer;
use crate::doctor::link::{DialError, Dialer, Link};
use crate::event::{ConnectResult, Event, EventKind};
use crate::target::Target;

use super::exchange::Seen;
use super::steps::CallStep;
use super::{Plan, Record};

/// Resolves the target and dials its addresses in turn: the link, or
/// `None` with each failure recorded and explained.
pub(super) async fn connect(
    plan: &Plan,
    seen: &Seen,
    rec: &mut Record,
    explainer: &mut Explainer,
) -> Option<Link> {
    let t0 = seen.now_ms();
    let resolved = plan.target.resolve().await;
    let elapsed_ms = seen.now_ms() - t0;
    let (addrs, error) = match resolved {
        Ok(a) if !a.is_empty() => (a, None),
        Ok(_) => (Vec::new(), Some("no address".to_string())),
        Err(e) => (Vec::new(), Some(e)),
    };
    rec.addresses = addrs.iter().map(ToString::to_string).collect();
    seen.push(CallStep::Resolve {
        target: plan.target.text.clone(),
        addrs: rec.addresses.clone(),
        error: error.clone(),
        elapsed_ms,
    });
    if let Some(err) = error {
        let kind = EventKind::Resolve {
            addrs: Vec::new(),
            error: Some(err.clone()),
        };
        note(explainer, rec, seen.now_ms(), None, kind);
        // The catalogue's words speak of a channel that retries; this is
        // one attempt.
        if let Some((_, _, n)) = rec.notes.last_mut() {
            n.detail = format!("{err} (one attempt, no retry)");
        }
        rec.fail(format!("{} does not resolve: {err}", plan.target.text));
        return None;
    }
    // As pick_first: each address in turn until one connects.
    for addr in &addrs {
        let dialer = Dialer {
            addr: addr.clone(),
            tls: plan.tls.clone(),
            authority: authority(&plan.target),
            metadata: plan.metadata.clone(),
            connect_timeout: plan.connect_timeout,
            start: seen.start(),
            frames: true,
        };
        let from = seen.now_ms();
        let name = addr.to_string();
        match dialer.open().await {
            Ok(link) => {
                let tls = link.timing.tls.clone();
                dialed(seen, from, &name, link.timing.tcp_connect_ms, tls);
                rec.status = None;
                return Some(link);
            }
            Err(e) => dial_failed(seen, from, &name, &e, rec, explainer),
        }
    }
    None
}

fn authority(target: &Target) -> http::uri::Authority {
    target
        .authority
        .parse()
        .unwrap_or_else(|_| http::uri::Authority::from_static("localhost"))
}

/// The TCP and TLS steps of a dial that began at `from` (ms).
fn dialed(
    seen: &Seen,
    from: f64,
    addr: &str,
    tcp_ms: Option<f64>,
    tls: Option<crate::doctor::link::TlsInfo>,
) {
    let tcp_end = from + tcp_ms.unwrap_or(0.0);
    if let Some(elapsed_ms) = tcp_ms {
        let step = CallStep::TcpConnect {
            addr: addr.to_string(),
            elapsed_ms,
        };
        seen.push_at(tcp_end, step);
    }
    if let Some(t) = tls {
        seen.push_at(tcp_end + t.handshake_ms, CallStep::TlsHandshake(t));
    }
}

fn dial_failed(
    seen: &Seen,
    from: f64,
    addr: &str,
    e: &DialError,
    rec: &mut Record,
    explainer: &mut Explainer,
) {
    dialed(seen, from, addr, e.tcp_connect_ms, e.tls.clone());
    let cause = e.error.cause();
    let error = crate::redact::text(&e.error.to_string());
    seen.push(CallStep::ConnectFailed {
        addr: addr.to_string(),
        error: error.clone(),
        cause,
    });
    let kind = EventKind::Connect {
        result: ConnectResult::Error,
        error: Some(error.clone()),
        cause: Some(cause),
        elapsed_ms: seen.now_ms() - from,
        subchannel: 0,
    };
    let t = seen.now_ms();
    let event = Event {
        t_ms: t,
        kind,
        conn: None,
        addr: Some(addr.into()),
    };
    if let Some(mut n) = explainer.explain(&event) {
        // The catalogue's words speak of a channel that retries; this is
        // one attempt.
        if cause == crate::event::ConnectCause::Refused {
            n.detail = format!(
                "{addr} refused the connection: no process listens on that port (or a firewall rule rejects it); one attempt, no retry"
            );
        }
        rec.notes.push((t, None, n));
    }
    rec.fail(error);
}

fn note(
    explainer: &mut Explainer,
    rec: &mut Record,
    t_ms: f64,
    conn: Option<u64>,
    kind: EventKind,
) {
    let e = Event {
        t_ms,
        kind,
        conn,
        addr: None,
    };
    if let Some(n) = explainer.explain(&e) {
        rec.notes.push((t_ms, conn, n));
    }
}
