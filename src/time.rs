//! Timer helpers.

use tokio::time::Instant;

/// Sleeps until `t`, or forever when there is no `t` (a `select!` branch
/// for a timer that may be off).
pub async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
