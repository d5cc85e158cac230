//! Usage counted on reads, without a catalog write per read: download URLs handed out and the
//! downloads Cairn serves itself add up in memory, per tenant+env and UTC day (the day of the
//! read), and [`UsageBuffer::flush`] records them in one transaction: every
//! `CAIRN_USAGE_FLUSH_SECS` (5 s by default), and once more when the server stops after its last
//! response. Counters are additive, so every replica flushes its own deltas. A flush that fails
//! keeps them for the next one; a process killed between two flushes loses what it held.
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio_util::sync::CancellationToken;

use crate::usage::{self, day_of, Delta};

/// (tenant, env, day).
type Key = (String, String, String);

/// Deltas not yet recorded, by tenant+env and day.
#[derive(Debug, Default)]
pub struct UsageBuffer {
    pending: Mutex<BTreeMap<Key, Delta>>,
}

impl UsageBuffer {
    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Delta>> {
        // A panic elsewhere while holding the lock leaves whole deltas: keep counting.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `d` to the tenant+env's deltas of `now`'s day.
    pub fn add(&self, tenant: &str, env: &str, now: DateTime<Utc>, d: &Delta) {
        if d.is_zero() {
            return;
        }
        self.pending()
            .entry((tenant.to_owned(), env.to_owned(), day_of(now)))
            .or_default()
            .add(d);
    }

    /// `count` download URLs handed out, for items of `bytes` in all.
    pub fn urls_issued(&self, tenant: &str, env: &str, count: i64, bytes: i64, now: DateTime<Utc>) {
        self.add(tenant, env, now, &Delta::urls_issued(count, bytes));
    }

    /// Bytes Cairn sent of a download it serves itself; `started` the first time for a response.
    pub fn served(&self, tenant: &str, env: &str, started: bool, bytes: u64, now: DateTime<Utc>) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.add(tenant, env, now, &Delta::served(i64::from(started), bytes));
    }

    /// Whether nothing waits to be recorded.
    pub fn is_empty(&self) -> bool {
        self.pending().is_empty()
    }

    /// Records every pending delta in one transaction (in key order, as [`usage::Batch`]
    /// does); answers how many tenant+env days it recorded. On failure the deltas stay pending.
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<usize, DbErr> {
        let taken = std::mem::take(&mut *self.pending());
        if taken.is_empty() {
            return Ok(0);
        }
        let now = crate::values::catalog_time(Utc::now());
        let recorded = async {
            let txn = db.begin().await?;
            for ((tenant, env, day), d) in &taken {
                usage::record_on(&txn, tenant, env, day, now, d).await?;
            }
            txn.commit().await
        }
        .await;
        if let Err(e) = recorded {
            let mut pending = self.pending();
            for (key, d) in taken {
                pending.entry(key).or_default().add(&d);
            }
            return Err(e);
        }
        Ok(taken.len())
    }
}

/// Flushes `buffer` every `every` (the first time `every` from now) until `shutdown` is
/// cancelled; the server flushes once more after its last response.
pub fn spawn_flusher(
    buffer: Arc<UsageBuffer>,
    db: DatabaseConnection,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = every.max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if let Err(e) = buffer.flush(&db).await {
                tracing::warn!(error = %e, "could not record the usage counted on reads; kept for the next flush");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_add_up_per_scope_and_day() {
        let b = UsageBuffer::default();
        let day1 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let day2 = day1 + chrono::Duration::days(1);
        b.urls_issued("acme", "dev", 2, 300, day1);
        b.urls_issued("acme", "dev", 1, 5, day1);
        b.served("acme", "dev", true, 100, day1);
        b.served("acme", "dev", false, 50, day1);
        b.served("acme", "dev", true, 7, day2);
        b.urls_issued("acme", "prod", 0, 0, day1);
        let p = b.pending();
        assert_eq!(p.len(), 2, "{p:?}");
        let d = &p[&("acme".into(), "dev".into(), day_of(day1))];
        assert_eq!(
            (
                d.download_urls,
                d.download_url_bytes,
                d.downloads,
                d.download_bytes
            ),
            (3, 305, 1, 150)
        );
        let d = &p[&("acme".into(), "dev".into(), day_of(day2))];
        assert_eq!((d.downloads, d.download_bytes), (1, 7));
    }
}
