//! The CDN invalidation queue (DESIGN §7; STYLE habit 6). Purging a public item queues its CDN
//! path with [`enqueue`], inside the purge's own transaction; [`run`] sends what is queued to
//! CloudFront and [`spawn_worker`] calls it periodically.
//!
//! One run:
//! 1. **claims** up to [`MAX_PATHS_PER_RUN`] distinct queued paths — every free row of each path,
//!    so duplicates go out together — by writing a claim token and a lease
//!    (`claimed_until = now +` [`LEASE`]) in one conditional UPDATE. On Postgres the claim holds a
//!    transaction-scoped advisory lock, so claims by several replicas never interleave and a
//!    path is never split between two senders; SQLite has one writer anyway.
//! 2. **sends** the paths, deduplicated, in batches of at most [`MAX_BATCH_PATHS`] with
//!    CreateInvalidation. The CallerReference is derived from the batch's row ids, so a request
//!    retried after a lost answer (or re-sent by the next run after a crash) is recognised by
//!    CloudFront instead of creating a second invalidation. Transient failures (transport,
//!    timeouts, 5xx, `Throttling`, `TooManyInvalidationsInProgress`) are retried with
//!    exponential backoff and full jitter.
//! 3. **records** the outcome on every row of the batch's paths: `sent` with the invalidation
//!    id; `failed` with the error after a permanent refusal (unknown distribution, access
//!    denied, invalid request), never retried automatically — an operator fixes the cause and
//!    calls [`requeue_failed`]; still `queued` (attempts + 1, error kept, lease released)
//!    when transient failures outlast the backoff: the next run tries again, and this run stops
//!    sending, as CloudFront is overloaded or away. Every write is conditional on the claim
//!    token, so a sender whose lease ran out cannot overwrite a newer claim.
//!
//! A crash at any point loses nothing: claimed rows return to the queue when the lease ends.
//! `sent` rows are deleted after [`KEEP_SENT_DAYS`].
use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use entity::cdn_invalidation::{self, Column, Entity, STATE_FAILED, STATE_QUEUED, STATE_SENT};
use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use sha2::Digest;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::ObjectKey;

mod client;
pub use client::Invalidator;
use client::SendError;

/// Paths per CreateInvalidation.
pub const MAX_BATCH_PATHS: usize = 1000;
/// Distinct paths claimed by one run: CloudFront allows 3,000 individual paths in progress per
/// distribution, so more would only meet `TooManyInvalidationsInProgress`.
pub const MAX_PATHS_PER_RUN: usize = 3000;
/// How long a claim keeps other senders away; far longer than a run takes.
pub const LEASE: Duration = Duration::from_secs(300);
/// How often [`spawn_worker`] runs when the caller has no better idea.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// `sent` rows are kept this long (the record of what was invalidated), then deleted.
pub const KEEP_SENT_DAYS: i64 = 30;
/// CloudFront's limit on an invalidation path.
const MAX_PATH_LEN: usize = 4000;
/// Serialises claims on Postgres (`pg_advisory_xact_lock`); "cairn-cdn-inval" folded to 63 bits.
const CLAIM_LOCK: i64 = 0x6361_6972_6e2d_6364;

/// The CDN path of an object: `/` + the key percent-encoded per segment, exactly as clients
/// request it (CloudFront matches invalidation paths against the encoded request path). An
/// encoded key never contains `*`, so it can never become a wildcard.
pub fn path_for(key: &ObjectKey) -> String {
    format!("/{}", key.url_path())
}

/// What [`path_for`] produces: `/` then unreserved characters, `%` escapes and `/`.
fn is_cdn_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= MAX_PATH_LEN
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b))
}

/// Queues `paths` (from [`path_for`]) for invalidation. Call it inside the transaction that
/// purges the items: the rows commit or roll back with the purge. Duplicates are fine; a run
/// sends each path once.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    paths: &[String],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if let Some(bad) = paths.iter().find(|p| !is_cdn_path(p)) {
        return Err(DbErr::Custom(format!(
            "`{bad}` is not a CDN path (expected `/` and a percent-encoded key)"
        )));
    }
    // 10 values per row: 10,000 binds per statement, under SQLite's 32,766 and Postgres's 65,535.
    for chunk in paths.chunks(1000) {
        let rows = chunk.iter().map(|p| cdn_invalidation::ActiveModel {
            id: Set(Uuid::now_v7()),
            path: Set(p.clone()),
            state: Set(STATE_QUEUED.into()),
            invalidation_id: Set(None),
            attempts: Set(0),
            error: Set(None),
            claimed_until: Set(None),
            claim_token: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
        });
        Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum InvalidationError {
    #[error("catalog error: {0}")]
    Catalog(#[from] DbErr),
}

/// What one [`run`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Invalidations CloudFront accepted.
    pub batches: usize,
    /// Distinct paths in them.
    pub paths: usize,
    /// Rows marked `sent` (duplicates of a path included).
    pub rows: u64,
    pub invalidation_ids: Vec<String>,
    /// Rows marked `failed` after a permanent refusal.
    pub failed: u64,
    /// Claimed rows left queued after transient failures, for the next run.
    pub deferred: u64,
    /// `sent` rows older than [`KEEP_SENT_DAYS`] deleted.
    pub pruned: u64,
}

/// One CreateInvalidation: distinct paths and a CallerReference derived from the rows it
/// settles.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Batch {
    paths: Vec<String>,
    caller_reference: String,
}

/// Deduplicates the claimed rows' paths (oldest first) into batches of at most `max` paths.
fn batches(rows: &[cdn_invalidation::Model], max: usize) -> Vec<Batch> {
    let mut rows: Vec<_> = rows.iter().collect();
    rows.sort_by(|a, b| (a.created_at, &a.path, a.id).cmp(&(b.created_at, &b.path, b.id)));
    let mut ids: HashMap<&str, Vec<Uuid>> = HashMap::new();
    let mut order = Vec::new();
    for r in rows {
        ids.entry(&r.path)
            .or_insert_with(|| {
                order.push(r.path.as_str());
                Vec::new()
            })
            .push(r.id);
    }
    order
        .chunks(max)
        .map(|paths| {
            let mut row_ids: Vec<Uuid> = paths.iter().flat_map(|p| ids[p].clone()).collect();
            row_ids.sort();
            let mut h = sha2::Sha256::new();
            for id in &row_ids {
                h.update(id.as_bytes());
            }
            Batch {
                paths: paths.iter().map(|p| p.to_string()).collect(),
                caller_reference: format!("cairn-{}", &hex::encode(h.finalize())[..40]),
            }
        })
        .collect()
}

/// Rows no sender holds: queued, and unclaimed or with an expired lease.
fn free(now: DateTime<Utc>) -> Condition {
    Condition::all().add(Column::State.eq(STATE_QUEUED)).add(
        Condition::any()
            .add(Column::ClaimedUntil.is_null())
            .add(Column::ClaimedUntil.lt(now)),
    )
}

/// Claims every free row of the oldest `MAX_PATHS_PER_RUN` free paths for `token`.
async fn claim(
    db: &DatabaseConnection,
    token: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<cdn_invalidation::Model>, DbErr> {
    let until = now + chrono::Duration::seconds(LEASE.as_secs() as i64);
    let oldest_paths = Query::select()
        .column(Column::Path)
        .from(Entity)
        .cond_where(free(now))
        .group_by_col(Column::Path)
        .order_by_expr(Expr::col(Column::CreatedAt).min(), sea_orm::Order::Asc)
        .order_by(Column::Path, sea_orm::Order::Asc)
        .limit(MAX_PATHS_PER_RUN as u64)
        .to_owned();
    let txn = db.begin().await?;
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({CLAIM_LOCK})"))
            .await?;
    }
    Entity::update_many()
        .col_expr(Column::ClaimToken, Expr::value(token))
        .col_expr(Column::ClaimedUntil, Expr::value(until))
        .filter(free(now))
        .filter(Column::Path.in_subquery(oldest_paths))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Entity::find()
        .filter(Column::State.eq(STATE_QUEUED))
        .filter(Column::ClaimToken.eq(token))
        .order_by_asc(Column::CreatedAt)
        .all(db)
        .await
}

/// Settles the claimed rows of `paths`: `sent` with the invalidation id, `failed`, or back to the
/// queue (`state` stays `queued`) with the error.
async fn settle(
    db: &DatabaseConnection,
    token: Uuid,
    paths: &[String],
    outcome: Result<&str, (&str, &str)>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut q = Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::ClaimedUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::ClaimToken, Expr::value(None::<Uuid>));
    q = match outcome {
        Ok(id) => q
            .col_expr(Column::State, Expr::value(STATE_SENT))
            .col_expr(Column::InvalidationId, Expr::value(id))
            .col_expr(Column::SentAt, Expr::value(now))
            .col_expr(Column::Error, Expr::value(None::<String>)),
        Err((state, error)) => q
            .col_expr(Column::State, Expr::value(state))
            .col_expr(Column::Error, Expr::value(error)),
    };
    let res = q
        .filter(Column::State.eq(STATE_QUEUED))
        .filter(Column::ClaimToken.eq(token))
        .filter(Column::Path.is_in(paths.iter().cloned()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Sends what is queued (see the module documentation). Idempotent: a second run finds nothing.
/// Errors only when the catalog fails; CloudFront's failures are recorded on the rows.
pub async fn run(
    db: &DatabaseConnection,
    inv: &Invalidator,
    now: DateTime<Utc>,
) -> Result<Summary, InvalidationError> {
    let mut summary = Summary::default();
    let token = Uuid::now_v7();
    let rows = claim(db, token, now).await?;
    for batch in batches(&rows, MAX_BATCH_PATHS) {
        let n = batch.paths.len() as u64;
        match inv.send(&batch).await {
            Ok(id) => {
                let rows = settle(db, token, &batch.paths, Ok(&id), now).await?;
                tracing::info!(distribution.id = %inv.distribution_id(), invalidation.id = %id, paths = n, rows, "CDN invalidation created");
                metrics::counter!("cairn_cdn_invalidation_paths_total", "outcome" => "sent")
                    .increment(n);
                summary.batches += 1;
                summary.paths += batch.paths.len();
                summary.rows += rows;
                summary.invalidation_ids.push(id);
            }
            Err(SendError::Permanent(error)) => {
                let rows =
                    settle(db, token, &batch.paths, Err((STATE_FAILED, &error)), now).await?;
                tracing::error!(distribution.id = %inv.distribution_id(), paths = n, rows, %error, "CloudFront refused an invalidation; its paths are marked failed");
                metrics::counter!("cairn_cdn_invalidation_paths_total", "outcome" => "failed")
                    .increment(n);
                summary.failed += rows;
            }
            Err(SendError::Transient(error)) => {
                let rows =
                    settle(db, token, &batch.paths, Err((STATE_QUEUED, &error)), now).await?;
                tracing::warn!(distribution.id = %inv.distribution_id(), paths = n, rows, %error, "CloudFront is unavailable; the paths stay queued for the next run");
                metrics::counter!("cairn_cdn_invalidation_paths_total", "outcome" => "deferred")
                    .increment(n);
                summary.deferred += rows;
                break;
            }
        }
    }
    // What a transient failure left unsent goes back to the queue now, not when the lease ends.
    let released = Entity::update_many()
        .col_expr(Column::ClaimedUntil, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::ClaimToken, Expr::value(None::<Uuid>))
        .filter(Column::State.eq(STATE_QUEUED))
        .filter(Column::ClaimToken.eq(token))
        .exec(db)
        .await?;
    summary.deferred += released.rows_affected;
    summary.pruned = Entity::delete_many()
        .filter(Column::State.eq(STATE_SENT))
        .filter(Column::CreatedAt.lt(now - chrono::Duration::days(KEEP_SENT_DAYS)))
        .exec(db)
        .await?
        .rows_affected;
    Ok(summary)
}

/// Puts `failed` rows back in the queue once an operator fixed the cause (the distribution id,
/// the IAM policy); returns how many. Their attempts keep counting.
pub async fn requeue_failed(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let res = Entity::update_many()
        .col_expr(Column::State, Expr::value(STATE_QUEUED))
        .filter(Column::State.eq(STATE_FAILED))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Runs [`run`] every `every` (the first run at once) until `shutdown` is cancelled. Stopping
/// mid-run is safe: claimed rows return to the queue when their lease ends, and a re-sent batch
/// carries the same CallerReference.
pub fn spawn_worker(
    db: DatabaseConnection,
    inv: Invalidator,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(distribution.id = %inv.distribution_id(), every_secs = every.as_secs(), "CDN invalidation worker started");
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                res = run(&db, &inv, Utc::now()) => if let Err(e) = res {
                    tracing::warn!(error = %e, "CDN invalidation run failed; the queue is retried at the next tick");
                }
            }
        }
        tracing::info!("CDN invalidation worker stopped");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, secs: i64) -> cdn_invalidation::Model {
        cdn_invalidation::Model {
            id: Uuid::now_v7(),
            path: path.into(),
            state: STATE_QUEUED.into(),
            invalidation_id: None,
            attempts: 0,
            error: None,
            claimed_until: None,
            claim_token: None,
            created_at: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
            sent_at: None,
        }
    }

    #[test]
    fn paths_are_the_encoded_keys() {
        let key =
            ObjectKey::parse("public/tenants/acme/dev/runs/r1/image/0192/hero ü*.png").unwrap();
        let p = path_for(&key);
        assert_eq!(
            p,
            "/public/tenants/acme/dev/runs/r1/image/0192/hero%20%C3%BC%2A.png"
        );
        assert!(is_cdn_path(&p));
        for bad in [
            "",
            "no-slash",
            "/a b",
            "/a*",
            "/ü",
            &format!("/{}", "a".repeat(4000)),
        ] {
            assert!(!is_cdn_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn batches_deduplicate_oldest_first_and_split() {
        let rows: Vec<_> = (0..5)
            .map(|i| row(&format!("/p{i}"), i))
            .chain([row("/p1", 10), row("/p3", 11)])
            .collect();
        let b = batches(&rows, 2);
        let paths: Vec<Vec<String>> = b.iter().map(|b| b.paths.clone()).collect();
        assert_eq!(paths, [vec!["/p0", "/p1"], vec!["/p2", "/p3"], vec!["/p4"]]);
        let refs: std::collections::HashSet<_> = b.iter().map(|b| &b.caller_reference).collect();
        assert_eq!(refs.len(), 3);

        // Deterministic: the same rows in any order give the same batches.
        let mut shuffled = rows.clone();
        shuffled.reverse();
        assert_eq!(batches(&shuffled, 2), b);
        // Another duplicate row changes the reference of its batch only.
        let mut more = rows.clone();
        more.push(row("/p2", 12));
        let c = batches(&more, 2);
        assert_eq!(c[0], b[0]);
        assert_ne!(c[1].caller_reference, b[1].caller_reference);
    }
}
