//! Timer helpers.

use tokio::time::Instant;

/// Sleeps `d`, or forever when there is none (`--for` not given).
pub async fn sleep_opt(d: Option<std::time::Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `t`, or forever when there is no `t` (a `select!` branch
/// for a timer that may be off).
pub async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
