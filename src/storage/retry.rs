//! Retries of transient store failures: exponential backoff with full jitter. Only
//! [`StoreError::Unavailable`] (transport failures, 5xx, throttling) is retried.
use std::{future::Future, time::Duration};

use super::StoreError;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The longest wait before attempt `n` (1-based, after the first failure): `base * 2^(n-1)`,
    /// capped at `max`. The actual wait is uniform in `[0, that]` (full jitter).
    pub fn ceiling(&self, n: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20))
            .min(self.max)
    }

    /// Runs `op` until it succeeds, fails permanently, or the attempts are used up.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(StoreError::Unavailable(detail)) if attempt < self.attempts => {
                    let ceiling = self.ceiling(attempt);
                    let wait = ceiling.mul_f64(rand::random::<f64>());
                    tracing::warn!(what, attempt, wait_ms = wait.as_millis() as u64, %detail, "transient store error; retrying");
                    metrics::counter!("cairn_store_retries_total", "operation" => what.to_owned())
                        .increment(1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn quick() -> Backoff {
        Backoff {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(4),
        }
    }

    #[test]
    fn ceilings_grow_exponentially_and_are_capped() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(30), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out = quick()
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(StoreError::Unavailable("503".into()))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_last_attempt_and_never_retries_permanent_errors() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = quick()
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Unavailable("503".into()))
            })
            .await;
        assert!(matches!(out, Err(StoreError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let calls = AtomicU32::new(0);
        let out: Result<(), _> = quick()
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Other("403".into()))
            })
            .await;
        assert!(matches!(out, Err(StoreError::Other(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
