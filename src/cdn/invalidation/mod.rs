//! The CDN invalidation queue (DESIGN §7; STYLE habit 6). Purging a public item queues its CDN
//! paths ([`paths_for`]: every form CloudFront may cache it under) with [`enqueue`], inside the
//! purge's own transaction; [`run`] sends what is queued to CloudFront, and the job runner
//! calls it every minute (`crate::jobs::invalidations`).
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
//!    calls [`requeue_failed`] (`POST /admin/cdn/invalidations/requeue`); still `queued` (attempts + 1, error kept, lease released)
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

use crate::values::ObjectKey;

mod client;
mod paths;
mod queue;

pub use client::Invalidator;
use client::SendError;
use paths::{is_cdn_path, is_wildcard};
pub use paths::{path_for, paths_for};
use queue::{batches, claim, settle, Batch};

/// Paths per CreateInvalidation.
pub const MAX_BATCH_PATHS: usize = 1000;
/// Wildcard paths per CreateInvalidation: CloudFront allows 15 in progress per distribution, so
/// a batch with more would be refused however long it waited.
pub const MAX_BATCH_WILDCARDS: usize = 15;
/// Distinct paths claimed by one run: CloudFront allows 3,000 individual paths in progress per
/// distribution, so more would only meet `TooManyInvalidationsInProgress`.
pub const MAX_PATHS_PER_RUN: usize = 3000;
/// How long a claim keeps other senders away; far longer than a run takes.
pub const LEASE: Duration = Duration::from_secs(300);
/// `sent` rows are kept this long (the record of what was invalidated), then deleted.
pub const KEEP_SENT_DAYS: i64 = 30;
/// Serialises claims on Postgres (`pg_advisory_xact_lock`); "cairn-cdn-inval" folded to 63 bits.
const CLAIM_LOCK: i64 = 0x6361_6972_6e2d_6364;

/// Queues `paths` (from [`paths_for`]) for invalidation. Call it inside the transaction that
/// purges the items: the rows commit or roll back with the purge. Duplicates are fine; a run
/// sends each path once.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    paths: &[String],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if let Some(bad) = paths.iter().find(|p| !is_cdn_path(p)) {
        return Err(DbErr::Custom(format!(
            "`{bad}` is not a CDN path (expected `/` and a percent-encoded key, or a public \
             artifact's directory and `*`)"
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
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
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

/// Sends what is queued (see the module documentation). Idempotent: a second run finds nothing.
/// Errors only when the catalog fails; CloudFront's failures are recorded on the rows.
pub async fn run(
    db: &DatabaseConnection,
    inv: &Invalidator,
    now: DateTime<Utc>,
) -> Result<Summary, InvalidationError> {
    run_until(db, inv, now, &CancellationToken::new()).await
}

/// [`run`], stopping between batches once `stop` is cancelled (shutdown): what was claimed and
/// not sent goes back to the queue.
pub async fn run_until(
    db: &DatabaseConnection,
    inv: &Invalidator,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Summary, InvalidationError> {
    let mut summary = Summary::default();
    let token = Uuid::now_v7();
    let rows = claim(db, token, now).await?;
    for batch in batches(&rows, MAX_BATCH_PATHS) {
        if stop.is_cancelled() {
            break;
        }
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
    // What a transient failure or a stop left unsent goes back to the queue now, not when the
    // lease ends.
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

#[cfg(test)]
mod tests;
