//! [`eventually`]: wait, bounded, for a cluster to show a change.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a change may take to show: Kafka answers an admin request once
/// the controller has committed it, and each broker's metadata cache (what
/// Metadata, DescribeConfigs and the authorizer read) applies it a moment
/// later. The Java admin client has the same window.
pub const PROPAGATION: Duration = Duration::from_secs(15);

/// Calls `check` every 50 ms until it returns `Some`, and returns that.
///
/// # Panics
///
/// If [`PROPAGATION`] passes first, naming `what` and the last `None`'s
/// reason as `check` gave it through `Err`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(reason) if start.elapsed() > PROPAGATION => {
                panic!("{what}: still not so after {PROPAGATION:?}: {reason}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
