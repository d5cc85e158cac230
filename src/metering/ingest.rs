//! CDN egress: CloudFront standard access logs directly under `CAIRN_CDN_LOG_PREFIX`, each file
//! added to `usage_daily` (and the cumulative counters) exactly once: its requests and bytes are
//! downloads served (`downloads`, `download_bytes`, with Cairn's own) and CloudFront's part of them
//! (`cdn_requests`, `cdn_bytes`). The file's `cdn_log_file`
//! row is inserted in the same transaction as its counts: a file seen again, by a later run or by
//! a replica racing this one, finds its row and adds nothing.
//!
//! A file that cannot be parsed (not gzip, not UTF-8, too large, a line too long, no `#Fields`)
//! fails for good: its row records the error with zero counts, in that run's report, and later
//! runs never read it again. A file the store cannot give now (unavailable, any store error) is
//! not recorded, and the next run retries it.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::cdn_log_file;
use sea_orm::{
    sea_query::OnConflict, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::cdn_log::{self, Parsed};
use crate::{
    storage::{ListedObject, ObjectStore},
    usage::{self, Delta},
    values::ObjectKey,
};

/// The largest log file read (compressed). CloudFront delivers several files an hour per
/// distribution, each of a few MB at most; a larger object under the prefix is not one of them.
/// It is the most memory one file takes (the text is decompressed as a stream).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// The largest decompressed log file: about 30 times [`MAX_FILE_BYTES`], more than text logs
/// compress. It bounds the time a file takes, not memory.
pub const MAX_TEXT_BYTES: u64 = 2 << 30;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Log files added in this run.
    pub files: u64,
    /// Log files listed that earlier runs had recorded (added, or failed for good).
    pub already_ingested: u64,
    /// Log files that failed for good in this run: recorded with their error, never read again.
    #[serde(default)]
    pub failed: u64,
    pub lines: u64,
    pub skipped: u64,
    /// Lines refused for an absurd `sc-bytes` (or totals a counter cannot hold): not added.
    #[serde(default)]
    pub rejected: u64,
    pub requests: u64,
    pub bytes: u64,
    /// This run's failures: files that failed for good (`failed`) and files the store could not
    /// give now, retried next run.
    pub errors: Vec<String>,
}

/// Why a log file was not added.
#[derive(Debug)]
enum ReadError {
    /// The file itself cannot be ingested; it never will be.
    Permanent(String),
    /// The store could not give it now; the next run tries again.
    Transient(String),
}

/// Adds every log file directly under `prefix` not yet recorded.
pub async fn ingest(
    db: &DatabaseConnection,
    store: &dyn ObjectStore,
    prefix: &str,
    envs: &[String],
    now: DateTime<Utc>,
) -> Result<IngestReport, DbErr> {
    let mut report = IngestReport::default();
    let mut next = None;
    loop {
        let page = match store.list_objects(prefix, next.take()).await {
            Ok(p) => p,
            Err(e) => {
                report.errors.push(format!("listing {prefix}: {e}"));
                return Ok(report);
            }
        };
        let logs: Vec<&ListedObject> = page
            .objects
            .iter()
            .filter(|o| cdn_log::is_log_file(prefix, &o.key))
            .collect();
        let known = recorded(db, &logs).await?;
        for o in logs {
            if known.contains(&o.key) {
                report.already_ingested += 1;
                continue;
            }
            match read(store, o, envs).await {
                Ok((parsed, file)) => {
                    if parsed.rejected > 0 {
                        tracing::warn!(key = %o.key, rejected = parsed.rejected, "CloudFront log lines rejected: sc-bytes no response can have");
                    }
                    if add_file(db, &o.key, &file, now).await? {
                        report.add(&parsed);
                    } else {
                        report.already_ingested += 1;
                    }
                }
                Err(ReadError::Permanent(e)) => {
                    if record_failure(db, &o.key, o.size, &e, now).await? {
                        tracing::warn!(key = %o.key, error = %e, "CloudFront log file cannot be ingested; recorded, not retried");
                        report.failed += 1;
                        report.errors.push(format!("{}: {e}", o.key));
                    } else {
                        report.already_ingested += 1;
                    }
                }
                Err(ReadError::Transient(e)) => {
                    tracing::warn!(key = %o.key, error = %e, "could not read a CloudFront log file; the next run retries");
                    report
                        .errors
                        .push(format!("{}: {e} (retried next run)", o.key));
                }
            }
        }
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    metrics::counter!("cairn_cdn_log_files_total").increment(report.files);
    metrics::counter!("cairn_cdn_log_files_failed_total").increment(report.failed);
    metrics::counter!("cairn_cdn_log_lines_rejected_total").increment(report.rejected);
    Ok(report)
}

impl IngestReport {
    /// Adds one file's counts. Report totals are for people: they saturate rather than fail.
    fn add(&mut self, parsed: &Parsed) {
        self.files += 1;
        self.lines = self.lines.saturating_add(parsed.lines);
        self.skipped = self.skipped.saturating_add(parsed.skipped);
        self.rejected = self.rejected.saturating_add(parsed.rejected);
        self.requests = self.requests.saturating_add(parsed.requests);
        self.bytes = self.bytes.saturating_add(parsed.bytes);
    }
}

/// The keys among `logs` that have a `cdn_log_file` row (added or failed).
async fn recorded(
    db: &DatabaseConnection,
    logs: &[&ListedObject],
) -> Result<HashSet<String>, DbErr> {
    if logs.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<String> = cdn_log_file::Entity::find()
        .select_only()
        .column(cdn_log_file::Column::Key)
        .filter(cdn_log_file::Column::Key.is_in(logs.iter().map(|o| o.key.as_str())))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Reads and parses one log file (off the async workers: parsing is CPU work); its counts as
/// catalog values.
async fn read(
    store: &dyn ObjectStore,
    o: &ListedObject,
    envs: &[String],
) -> Result<(Parsed, File), ReadError> {
    let too_large = || ReadError::Permanent(format!("larger than {MAX_FILE_BYTES} bytes"));
    if o.size > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let k =
        ObjectKey::parse(&o.key).ok_or_else(|| ReadError::Permanent("not an object key".into()))?;
    let limit = usize::try_from(MAX_FILE_BYTES + 1).unwrap_or(usize::MAX);
    let raw = match store.read_prefix(&k, limit).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Err(ReadError::Transient("listed, but no longer there".into())),
        Err(e) => return Err(ReadError::Transient(e.to_string())),
    };
    if raw.len() >= limit {
        return Err(too_large());
    }
    let envs = envs.to_vec();
    let parsed = tokio::task::spawn_blocking(move || cdn_log::parse(&raw, &envs, MAX_TEXT_BYTES))
        .await
        .map_err(|e| ReadError::Transient(format!("parsing stopped: {e}")))?
        .map_err(|e| ReadError::Permanent(e.to_string()))?;
    // Unreachable: the parser keeps every total within `i64::MAX`.
    let file = File::of(o.size, &parsed)
        .ok_or_else(|| ReadError::Permanent("counts past what a counter holds".into()))?;
    Ok((parsed, file))
}

/// One file's row and counter deltas as catalog values, every one checked into an `i64`.
struct File {
    size: i64,
    lines: i64,
    skipped: i64,
    rejected: i64,
    requests: i64,
    bytes: i64,
    /// (day, tenant, env, delta).
    deltas: Vec<(String, String, String, Delta)>,
}

impl File {
    /// `None` when a count does not fit. The size is only informative: one past `i64` (none is)
    /// would be recorded as `i64::MAX`.
    fn of(size: u64, parsed: &Parsed) -> Option<Self> {
        let mut deltas = Vec::with_capacity(parsed.served.len());
        for ((day, tenant, env), s) in &parsed.served {
            let d = Delta::cdn_served(
                i64::try_from(s.requests).ok()?,
                i64::try_from(s.bytes).ok()?,
            );
            let day = day.format("%Y-%m-%d").to_string();
            deltas.push((day, tenant.clone(), env.clone(), d));
        }
        Some(Self {
            size: i64::try_from(size).unwrap_or(i64::MAX),
            lines: i64::try_from(parsed.lines).ok()?,
            skipped: i64::try_from(parsed.skipped).ok()?,
            rejected: i64::try_from(parsed.rejected).ok()?,
            requests: i64::try_from(parsed.requests).ok()?,
            bytes: i64::try_from(parsed.bytes).ok()?,
            deltas,
        })
    }
}

/// Records one file and its counts in one transaction; false when it was already recorded.
async fn add_file(
    db: &DatabaseConnection,
    key: &str,
    file: &File,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    if !insert_row(&txn, key, file, None, now).await? {
        return Ok(false);
    }
    for (day, tenant, env, d) in &file.deltas {
        usage::record_on(&txn, tenant, env, day, now, d).await?;
    }
    txn.commit().await?;
    tracing::info!(
        key,
        lines = file.lines,
        rejected = file.rejected,
        requests = file.requests,
        bytes = file.bytes,
        "CloudFront log ingested"
    );
    Ok(true)
}

/// Records a file that failed for good: its row with `error` and zero counts, so no run reads it
/// again. False when it was already recorded.
async fn record_failure(
    db: &DatabaseConnection,
    key: &str,
    size: u64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let file = File::of(size, &Parsed::default()).expect("zero counts fit");
    insert_row(db, key, &file, Some(error), now).await
}

/// Inserts the file's row unless one exists; true when this call inserted it.
async fn insert_row<C: ConnectionTrait>(
    db: &C,
    key: &str,
    c: &File,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let inserted = cdn_log_file::Entity::insert(cdn_log_file::ActiveModel {
        key: Set(key.to_owned()),
        size_bytes: Set(c.size),
        lines: Set(c.lines),
        skipped: Set(c.skipped),
        rejected: Set(c.rejected),
        requests: Set(c.requests),
        bytes: Set(c.bytes),
        ingested_at: Set(now),
        error: Set(error.map(str::to_owned)),
    })
    .on_conflict(
        OnConflict::column(cdn_log_file::Column::Key)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted > 0)
}
