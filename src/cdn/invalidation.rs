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
pub use client::Invalidator;
use client::SendError;

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
/// CloudFront's limit on an invalidation path.
const MAX_PATH_LEN: usize = 4000;
/// Serialises claims on Postgres (`pg_advisory_xact_lock`); "cairn-cdn-inval" folded to 63 bits.
const CLAIM_LOCK: i64 = 0x6361_6972_6e2d_6364;

/// The URL path Cairn hands out for an object (`Cdn::object_url`): `/` + the key
/// percent-encoded per segment, every character but RFC 3986's unreserved ones encoded. An
/// encoded key never contains `*`, so it can never become a wildcard.
pub fn path_for(key: &ObjectKey) -> String {
    format!("/{}", key.url_path())
}

/// Every path to invalidate for the object at `key`: each cache entry of it CloudFront may hold
/// for a URL Cairn handed out.
///
/// - **Query strings.** The only query Cairn puts on a public URL is `/content`'s
///   `?response-content-disposition=...`, and the public cache policy in infra/ keys on the path
///   alone (`QueryStringBehavior: none`): every such URL is the one cache entry of its path, and
///   the bare path invalidates it. Private objects are never invalidated: they are reached only
///   with signed URLs (at most 7 days), and a deleted item gets none, so by the time the sweep
///   purges it (`CAIRN_PURGE_GRACE_SECS`, 7 days by default) none is left to reach the cached copy.
/// - **Encoding.** CloudFront's rule for invalidation paths: percent-encode non-ASCII and the
///   characters RFC 1738 calls unsafe, and nothing else, or the cached object is not
///   invalidated. That path comes first ([`invalidation_path`]); the path Cairn handed out
///   ([`path_for`]), which also encodes `!$&'()+,:=@`, follows when it differs, so the entry is
///   gone whichever form CloudFront's cache holds.
/// - **`*`** is CloudFront's wildcard and has no literal form. A public artifact's key whose
///   name holds one is invalidated with its directory: `/public/.../<artifact id>/*`, which holds
///   that object alone (ids are never reused). Such paths count against CloudFront's 15
///   wildcard paths in progress; [`batches`] sends at most [`MAX_BATCH_WILDCARDS`] at a time.
pub fn paths_for(key: &ObjectKey) -> Vec<String> {
    let k = key.as_str();
    if k.contains('*') {
        let segments: Vec<&str> = k.split('/').collect();
        if is_public_artifact_key(&segments) {
            let dir = &segments[..segments.len() - 1];
            return vec![format!("/{}/*", encode(dir))];
        }
    }
    let documented = invalidation_path(key);
    let handed_out = path_for(key);
    if documented == handed_out {
        vec![documented]
    } else {
        vec![documented, handed_out]
    }
}

/// The key encoded as CloudFront's invalidation rules ask ([`CLOUDFRONT_UNSAFE`]).
fn invalidation_path(key: &ObjectKey) -> String {
    format!("/{}", encode(&key.as_str().split('/').collect::<Vec<_>>()))
}

fn encode(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| percent_encoding::utf8_percent_encode(s, CLOUDFRONT_UNSAFE).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// What CloudFront's invalidation paths encode: controls and non-ASCII (always encoded), RFC
/// 1738's unsafe characters (space `<>"#%{}|\^~[]` and backquote), `?` and `;` (they would end
/// the path) and `*` (the wildcard).
const CLOUDFRONT_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'<')
    .add(b'>')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'~')
    .add(b'[')
    .add(b']')
    .add(b'`')
    .add(b'?')
    .add(b';')
    .add(b'*');

/// `public/tenants/<tenant>/<env>/runs/<run>/<kind>/<artifact id>/<filename>` (DESIGN §3).
fn is_public_artifact_key(segments: &[&str]) -> bool {
    segments.len() == 9
        && segments[0] == "public"
        && segments[1] == "tenants"
        && segments[4] == "runs"
        && uuid::Uuid::parse_str(segments[7]).is_ok()
}

/// What [`paths_for`] produces: `/` then letters, digits, `%` escapes, `/` and the characters
/// either encoding leaves as they are (`-._~!$&'()+,:=@`); a `*` only as the last segment of
/// a public artifact's directory.
fn is_cdn_path(p: &str) -> bool {
    let (body, wildcard) = match p.strip_suffix("/*") {
        Some(dir) => (dir, true),
        None => (p, false),
    };
    p.starts_with('/')
        && p.len() <= MAX_PATH_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%/!$&'()+,:=@".contains(&b))
        && (!wildcard
            || body.strip_prefix('/').is_some_and(|dir| {
                let mut segments: Vec<&str> = dir.split('/').collect();
                segments.push("*");
                is_public_artifact_key(&segments)
            }))
}

/// Whether CloudFront counts `path` as a wildcard path.
fn is_wildcard(path: &str) -> bool {
    path.ends_with('*')
}

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

/// One CreateInvalidation: distinct paths and a CallerReference derived from the rows it
/// settles.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Batch {
    paths: Vec<String>,
    caller_reference: String,
}

/// Deduplicates the claimed rows' paths (oldest first) into batches of at most `max` paths:
/// the plain paths first, then the wildcard paths ([`paths_for`]) in batches of at most
/// [`MAX_BATCH_WILDCARDS`], so that CloudFront's tighter limit on those (which a run meets as
/// `TooManyInvalidationsInProgress` and leaves for the next) never holds plain paths back.
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
    let (wildcards, plain): (Vec<&str>, Vec<&str>) =
        order.into_iter().partition(|p| is_wildcard(p));
    plain
        .chunks(max)
        .chain(wildcards.chunks(max.min(MAX_BATCH_WILDCARDS)))
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

    /// CloudFront's rule: encode non-ASCII and RFC 1738's unsafe characters, nothing else. The
    /// URL Cairn hands out encodes more; both are queued when they differ.
    #[test]
    fn paths_follow_cloudfronts_encoding_rules_and_cover_what_cairn_hands_out() {
        let dir = "public/tenants/acme/dev/runs/r1/image/0192f0a0-0000-7000-8000-000000000001";
        let paths = |name: &str| paths_for(&ObjectKey::parse(&format!("{dir}/{name}")).unwrap());
        let p = |rest: &str| format!("/{dir}/{rest}");

        // Unreserved characters only: one path, the same in both encodings.
        assert_eq!(paths("hero_1-final.v2.png"), [p("hero_1-final.v2.png")]);
        // Space, non-ASCII and `~` are encoded; `+ ( ) ! ' , $ & = @ :` are not (CloudFront's
        // form), then the form Cairn's URLs carry.
        assert_eq!(
            paths("a b+(1)~ü!',$&=@:.png"),
            [
                p("a%20b+(1)%7E%C3%BC!',$&=@:.png"),
                p("a%20b%2B%281%29~%C3%BC%21%27%2C%24%26%3D%40%3A.png"),
            ]
        );
        // What would end the path or start a query is always encoded.
        assert_eq!(paths("q?x=1;y#z%.png")[0], p("q%3Fx=1%3By%23z%25.png"));
        // `*` has no literal form: the artifact's own directory, wildcarded.
        assert_eq!(paths("frame*.png"), [p("*")]);
        assert_eq!(paths("*"), [p("*")]);
        for path in paths("a b+(1)~ü!',$&=@:.png")
            .into_iter()
            .chain(paths("frame*.png"))
            .chain(paths("q?x=1;y#z%.png"))
        {
            assert!(is_cdn_path(&path), "{path}");
        }
        // The URL path Cairn hands out is always among them (the wildcard covers it).
        let key = ObjectKey::parse(&format!("{dir}/a b+(1)~.png")).unwrap();
        assert!(paths_for(&key).contains(&path_for(&key)));

        // A wildcard anywhere else is refused: it would reach other items.
        for bad in [
            "/public/*",
            "/*",
            "/public/tenants/acme/dev/runs/r1/image/*",
            "/public/tenants/acme/dev/runs/r1/image/not-an-id/*",
            "/public/tenants/acme/dev/runs/r1/image/0192f0a0-0000-7000-8000-000000000001/a*",
            "/tenants/acme/dev/runs/r1/image/0192f0a0-0000-7000-8000-000000000001/*",
        ] {
            assert!(!is_cdn_path(bad), "{bad}");
        }
    }

    #[test]
    fn wildcards_go_out_last_and_at_most_15_a_batch() {
        let dir = "/public/tenants/acme/dev/runs/r1/image";
        let mut rows: Vec<_> = (0..40)
            .map(|i| row(&format!("{dir}/0192f0a0-0000-7000-8000-{i:012}/*"), i))
            .collect();
        rows.extend((0..3).map(|i| row(&format!("/p{i}"), 100 + i)));
        let b = batches(&rows, 1000);
        let sizes: Vec<usize> = b.iter().map(|b| b.paths.len()).collect();
        assert_eq!(sizes, [3, 15, 15, 10]);
        assert!(b[0].paths.iter().all(|p| !is_wildcard(p)));
        assert!(b[1..].iter().flat_map(|b| &b.paths).all(|p| is_wildcard(p)));
        // Oldest first within each kind.
        assert_eq!(b[1].paths[0], rows[0].path);
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
