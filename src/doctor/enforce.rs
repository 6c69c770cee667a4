//! Keepalive enforcement: the server's minimum PING interval and whether
//! it allows PINGs on a connection without calls, found on connections of
//! their own (a too_many_pings GOAWAY ends each one it hits).
//!
//! grpc-go (`EnforcementPolicy`) and C-core (`min_ping_interval_without_data`)
//! count a strike for a PING that comes sooner than the minimum after the
//! previous one, forget strikes when they send HEADERS or DATA, and send
//! GOAWAY ENHANCE_YOUR_CALM `too_many_pings` at the third strike. Without
//! an open call and without permission the minimum is 2 hours. So: three
//! PINGs 10 ms apart give two strikes; one more PING `I` later gets the
//! GOAWAY exactly when `I` is below the minimum - and when it is not, the
//! connection keeps its two strikes and can test the next interval.
//! The connection holds a call open with no request, so the server sends
//! nothing that resets the strikes.

use std::time::Duration;

use super::link::{Dialer, Link};
use super::Budget;

/// The shortest interval tried; a server that accepts it has no
/// enforcement worth the name.
pub const FLOOR: Duration = Duration::from_millis(100);

pub struct Enforcement {
    /// The longest interval that drew too_many_pings.
    pub struck_max: Option<Duration>,
    /// The shortest interval accepted (two strikes already counted).
    pub accepted_min: Option<Duration>,
    /// The budget ran out before the bounds met.
    pub out_of_budget: bool,
    /// PINGs without calls: permitted, not, or not measured (why).
    pub without_calls: Result<bool, String>,
    /// Probes run, connections used.
    pub probes: u32,
    pub connections: u32,
    /// Something else ended a probe (an other GOAWAY, a close).
    pub error: Option<String>,
}

/// How many times a probe cut by a drain is tried again.
const MAX_DRAINED: u32 = 4;

/// What a probe saw.
enum Probe {
    Accepted,
    TooManyPings,
    /// The server forgot the strikes before the PING: try again.
    Reset,
    Other(String),
}

/// Two strikes: a first PING the server does not count (none came before
/// it, or the server forgot them since), then two 10 ms apart. C-core
/// forgets strikes when it writes a WINDOW_UPDATE, and writes one with the
/// ACK of the first PING after a call opens: then one more PING is needed.
/// grpc-java counts from the connection's start (its first PING is already
/// a strike): with `from_start`, two PINGs in all.
async fn prime(link: &Link, from_start: bool) -> Result<(), String> {
    let before = link.log.strike_resets();
    ping(link).await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let more = if from_start {
        1
    } else if link.log.strike_resets() != before {
        3
    } else {
        2
    };
    for _ in 0..more {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ping(link).await?;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(())
}

async fn ping(link: &Link) -> Result<(), String> {
    match link.ping(Duration::from_secs(3)).await {
        Some(_) => Ok(()),
        None => Err(other(link, "a priming PING got no ACK")),
    }
}

fn other(link: &Link, what: &str) -> String {
    match (link.goaway(), link.closed()) {
        (Some(g), _) => format!("{what}: GOAWAY {} \"{}\"", g.code, g.debug),
        (None, Some((_, r))) => format!("{what}: connection closed ({r})"),
        _ => what.to_string(),
    }
}

/// PINGs `interval` after the previous PING, and looks for the GOAWAY.
async fn probe(
    link: &Link,
    interval: Duration,
    primed_resets: usize,
    budget: &Budget,
) -> Option<Probe> {
    let wait = match link.last_ping() {
        Some(at) => (at + interval).saturating_duration_since(std::time::Instant::now()),
        None => interval,
    };
    if !budget.sleep(wait).await {
        return None;
    }
    if let Some(r) = strike(link) {
        return Some(r);
    }
    let resets = link.log.strike_resets();
    let acked = link.ping(Duration::from_secs(3)).await;
    // The GOAWAY follows the ACK in the same write (grpc-go, C-core).
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(r) = strike(link) {
        return Some(r);
    }
    Some(match acked {
        // The strikes were forgotten before this PING: it proves nothing.
        Some(_) if link.log.strike_resets() != resets || resets != primed_resets => Probe::Reset,
        Some(_) => Probe::Accepted,
        None => Probe::Other(other(link, "the PING got no ACK")),
    })
}

fn strike(link: &Link) -> Option<Probe> {
    match link.goaway() {
        Some(g) if g.code == "ENHANCE_YOUR_CALM" => Some(Probe::TooManyPings),
        Some(g) => Some(Probe::Other(format!(
            "GOAWAY {} \"{}\" during the probe",
            g.code, g.debug
        ))),
        None if link.is_closed() => Some(Probe::Other(other(link, "closed during the probe"))),
        None => None,
    }
}

/// A connection with a call held open and two strikes counted.
struct Primed {
    link: Link,
    _held: super::link::HeldCall,
    /// Strike-resetting frames seen when it was primed.
    resets: usize,
}

/// Why a connection could not be primed.
enum Unprimed {
    /// GOAWAY too_many_pings while priming: the server counted the first
    /// PING too (grpc-java counts from the connection's start).
    Calm,
    /// The connection drained (max age, a stop): another one may do.
    Drained(String),
    Failed(String),
}

impl Unprimed {
    fn of(link: &Link, why: String) -> Self {
        match link.goaway() {
            Some(g) if g.code == "ENHANCE_YOUR_CALM" => Unprimed::Calm,
            Some(g) if g.code == "NO_ERROR" => Unprimed::Drained(why),
            _ => Unprimed::Failed(why),
        }
    }
}

async fn primed(dialer: &Dialer, hold: &str, from_start: bool) -> Result<Primed, Unprimed> {
    let link = dialer
        .open()
        .await
        .map_err(|e| Unprimed::Failed(e.to_string()))?;
    let held = link
        .hold(hold)
        .map_err(|e| Unprimed::Failed(e.to_string()))?;
    // The call's HEADERS go out before the first PING.
    tokio::time::sleep(Duration::from_millis(20)).await;
    if let Err(why) = prime(&link, from_start).await {
        return Err(Unprimed::of(&link, why));
    }
    if held.is_end() {
        // Give a GOAWAY that ended it a moment to be read.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let why = other(
            &link,
            &format!("the server ended the call to {hold} held open"),
        );
        return Err(Unprimed::of(&link, why));
    }
    let resets = link.log.strike_resets();
    Ok(Primed {
        link,
        _held: held,
        resets,
    })
}

pub async fn measure(dialer: &Dialer, hold: &str, budget: &Budget) -> Enforcement {
    let mut e = Enforcement {
        struck_max: None,
        accepted_min: None,
        out_of_budget: false,
        without_calls: Err("needs the minimum interval first".into()),
        probes: 0,
        connections: 0,
        error: None,
    };
    let mut conn: Option<Primed> = None;
    let mut retries = 0;
    // Connections cut by a drain (max age, a stop) before a probe ended:
    // tried again on a new one, this many times.
    let mut drained = 0;
    let mut from_start = false;
    // The shortest life of a connection a drain ended under a probe.
    let mut lifetime: Option<Duration> = None;
    // Up from the floor, doubling, until an interval is accepted; then
    // halve the range (geometrically) to within 10%.
    let mut next = FLOOR;
    loop {
        if let (Some(lo), Some(hi)) = (e.struck_max, e.accepted_min) {
            if hi.as_secs_f64() <= lo.as_secs_f64() * 1.1 {
                break;
            }
            next = Duration::from_secs_f64((lo.as_secs_f64() * hi.as_secs_f64()).sqrt());
        }
        // Connections that drain sooner than the interval cannot test it:
        // the longest interval that fits in their life, else no verdict.
        if let Some(life) = lifetime {
            let cap = life.mul_f64(0.8).saturating_sub(Duration::from_millis(100));
            if next > cap {
                if e.struck_max
                    .is_none_or(|lo| cap.as_secs_f64() > lo.as_secs_f64() * 1.1)
                {
                    next = cap;
                } else {
                    e.error = Some(format!(
                        "the server drains connections after about {}, too soon to test PINGs {} apart (above the {} that drew too_many_pings)",
                        super::model::secs(super::link::ms(life)),
                        super::model::secs(super::link::ms(next)),
                        super::model::secs(e.struck_max.map_or(0.0, super::link::ms)),
                    ));
                    break;
                }
            }
        }
        if budget.left() < next + Duration::from_secs(2) {
            e.out_of_budget = true;
            break;
        }
        if conn.as_ref().is_none_or(|c| c.link.is_closed()) {
            e.connections += 1;
            match primed(dialer, hold, from_start).await {
                Ok(c) => conn = Some(c),
                Err(Unprimed::Calm) if !from_start => {
                    from_start = true;
                    continue;
                }
                Err(Unprimed::Drained(_)) if drained < MAX_DRAINED => {
                    drained += 1;
                    continue;
                }
                Err(Unprimed::Calm) => {
                    e.error = Some("GOAWAY too_many_pings while priming, with two PINGs 10ms apart: the server allows fewer strikes than grpc-go, C-core and grpc-java".into());
                    return e;
                }
                Err(Unprimed::Drained(err) | Unprimed::Failed(err)) => {
                    e.error = Some(err);
                    return e;
                }
            }
        }
        let Some(c) = &conn else { break };
        e.probes += 1;
        match probe(&c.link, next, c.resets, budget).await {
            None => {
                e.out_of_budget = true;
                break;
            }
            Some(Probe::TooManyPings) => {
                e.struck_max = Some(next);
                conn = None;
                if e.accepted_min.is_none() {
                    next *= 2;
                }
            }
            Some(Probe::Accepted) => {
                e.accepted_min = Some(next);
                if e.struck_max.is_none() {
                    // Accepted at the floor: nothing to narrow.
                    break;
                }
            }
            Some(Probe::Reset) if retries < 3 => {
                retries += 1;
                conn = None;
            }
            Some(Probe::Reset) => {
                e.error = Some(
                    "the server keeps sending frames that reset ping strikes (HEADERS, DATA or WINDOW_UPDATE)".into(),
                );
                return e;
            }
            Some(Probe::Other(_)) if drained < MAX_DRAINED && c.link.drained() => {
                // A drain cut the probe: the interval is tried again on a
                // new connection, within the life connections have.
                drained += 1;
                if let Some(age) = c.link.drained_at_age() {
                    lifetime = Some(lifetime.map_or(age, |l| l.min(age)));
                }
                conn = None;
            }
            Some(Probe::Other(why)) => {
                e.error = Some(if c.link.drained() {
                    format!("{why} (a drain cut {} probes; the server's max age is shorter than a probe)", drained + 1)
                } else {
                    why
                });
                return e;
            }
        }
    }
    drop(conn);
    e.without_calls = without_calls(dialer, e.accepted_min, from_start, budget).await;
    e
}

/// On a connection without calls: two strikes, then a PING a quarter
/// above the minimum interval. A GOAWAY means PINGs without calls are not
/// permitted (the 2 h minimum applies).
async fn without_calls(
    dialer: &Dialer,
    min: Option<Duration>,
    from_start: bool,
    budget: &Budget,
) -> Result<bool, String> {
    let Some(min) = min else {
        return Err("needs the minimum interval first".into());
    };
    let wait = (min.mul_f64(1.25)).max(min + Duration::from_millis(200));
    if budget.left() < wait + Duration::from_secs(2) {
        return Err(format!(
            "the budget left no room for a {} wait",
            super::model::secs(wait.as_secs_f64() * 1e3)
        ));
    }
    for _ in 0..3 {
        let link = dialer.open().await.map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        prime(&link, from_start).await?;
        let resets = link.log.strike_resets();
        match probe(&link, wait, resets, budget).await {
            Some(Probe::Accepted) => return Ok(true),
            Some(Probe::TooManyPings) => return Ok(false),
            Some(Probe::Reset) => continue,
            Some(Probe::Other(why)) => return Err(why),
            None => return Err("the budget ran out".into()),
        }
    }
    Err("the server kept sending frames that reset ping strikes".into())
}
