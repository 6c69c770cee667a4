//! Max connection age and grace: a connection kept busy (a call every
//! second, and a call held open when there is a method to hold) until the
//! server's GOAWAY; the held call then stays open across the drain until
//! the server cuts the connection: that is the grace.

use std::time::Duration;

use super::link::{Dialer, GoawaySeen};
use super::setup::UNKNOWN_METHOD;
use super::Budget;

pub struct AgeRun {
    pub ready_ms: f64,
    pub goaway: Option<GoawaySeen>,
    pub closed: Option<(f64, String)>,
    /// A call was held open when the GOAWAY came.
    pub held_across: bool,
    pub held_method: Option<String>,
}

const CALL_EVERY: Duration = Duration::from_secs(1);

pub async fn measure(
    dialer: &Dialer,
    hold: Option<String>,
    budget: &Budget,
) -> Result<AgeRun, String> {
    let link = dialer.open().await.map_err(|e| e.to_string())?;
    let held = hold.as_deref().and_then(|h| link.hold(h).ok());
    // The held call ended before any GOAWAY (the server or a proxy ended
    // it): it cannot show the grace.
    let mut hold_lost = held.is_none();
    loop {
        if link.goaway().is_some() || link.is_closed() {
            break;
        }
        if held.as_ref().is_some_and(|s| s.is_end()) {
            hold_lost = true;
        }
        let changed = link.conn.shared.changed.notified();
        let call = link.call(UNKNOWN_METHOD, &[], Duration::from_secs(2));
        let tick = tokio::time::sleep(CALL_EVERY);
        tokio::select! {
            done = budget.run(async { tokio::join!(call, tick) }) => if done.is_none() { break },
            _ = changed => {}
        }
    }
    let held_across = link.goaway().is_some() && !hold_lost;
    if link.goaway().is_some() {
        link.wait_closed(budget).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(AgeRun {
        ready_ms: link.ready_ms,
        goaway: link.goaway(),
        closed: link.closed(),
        held_across,
        held_method: held.map(|_| hold.unwrap_or_default()),
    })
}
