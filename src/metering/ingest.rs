//! CDN egress: CloudFront standard access logs under `CAIRN_CDN_LOG_PREFIX`, each file added to
//! `usage_daily` (and the cumulative counters) exactly once. The file's `cdn_log_file` row is
//! inserted in the same transaction as its counts: a file seen again, by a later run or by a
//! replica racing this one, finds its row and adds nothing.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::cdn_log_file;
use sea_orm::{
    sea_query::OnConflict, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::{
    cdn_log::{self, Parsed},
    counters::{self, Delta},
};
use crate::{domain::ObjectKey, storage::ObjectStore};

/// The largest log file read (compressed); CloudFront writes files of a few MB at most.
pub const MAX_FILE_BYTES: usize = 256 << 20;
/// The largest decompressed log file.
pub const MAX_TEXT_BYTES: u64 = 2 << 30;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Log files added in this run.
    pub files: u64,
    /// Log files listed that had been added before.
    pub already_ingested: u64,
    pub lines: u64,
    pub skipped: u64,
    pub requests: u64,
    pub bytes: u64,
    /// Files that could not be read or parsed (retried next run).
    pub errors: Vec<String>,
}

/// Adds every log file under `prefix` not yet ingested.
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
        let keys: Vec<&str> = page
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .filter(|k| cdn_log::is_log_file(k))
            .collect();
        let known: HashSet<String> = if keys.is_empty() {
            HashSet::new()
        } else {
            cdn_log_file::Entity::find()
                .select_only()
                .column(cdn_log_file::Column::Key)
                .filter(cdn_log_file::Column::Key.is_in(keys.iter().copied()))
                .into_tuple()
                .all(db)
                .await?
                .into_iter()
                .collect()
        };
        for o in page.objects.iter().filter(|o| cdn_log::is_log_file(&o.key)) {
            if known.contains(&o.key) {
                report.already_ingested += 1;
                continue;
            }
            match read(store, &o.key, envs).await {
                Ok(parsed) => {
                    if add_file(db, &o.key, o.size, &parsed, now).await? {
                        report.files += 1;
                        report.lines += parsed.lines;
                        report.skipped += parsed.skipped;
                        for s in parsed.served.values() {
                            report.requests += s.requests;
                            report.bytes += s.bytes;
                        }
                    } else {
                        report.already_ingested += 1;
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %o.key, error = %e, "could not read a CloudFront log file");
                    report.errors.push(format!("{}: {e}", o.key));
                }
            }
        }
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    metrics::counter!("cairn_cdn_log_files_total").increment(report.files);
    Ok(report)
}

async fn read(store: &dyn ObjectStore, key: &str, envs: &[String]) -> Result<Parsed, String> {
    let k = ObjectKey::parse(key).ok_or("not an object key")?;
    let raw = store
        .read_prefix(&k, MAX_FILE_BYTES + 1)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    if raw.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    cdn_log::parse(&raw, envs, MAX_TEXT_BYTES).map_err(|e| e.to_string())
}

/// Records one file and its counts in one transaction; false when it was already recorded.
async fn add_file(
    db: &DatabaseConnection,
    key: &str,
    size: u64,
    parsed: &Parsed,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let (mut requests, mut bytes) = (0i64, 0i64);
    for s in parsed.served.values() {
        requests += s.requests as i64;
        bytes += s.bytes as i64;
    }
    let res = cdn_log_file::Entity::insert(cdn_log_file::ActiveModel {
        key: Set(key.to_owned()),
        size_bytes: Set(size as i64),
        lines: Set(parsed.lines as i64),
        skipped: Set(parsed.skipped as i64),
        requests: Set(requests),
        bytes: Set(bytes),
        ingested_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(cdn_log_file::Column::Key)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if res == 0 {
        return Ok(false);
    }
    for ((day, tenant, env), s) in &parsed.served {
        let d = Delta {
            cdn_requests: s.requests as i64,
            cdn_bytes: s.bytes as i64,
            ..Delta::default()
        };
        let day = day.format("%Y-%m-%d").to_string();
        counters::record_on(&txn, tenant, env, &day, now, &d).await?;
    }
    txn.commit().await?;
    tracing::info!(
        key,
        lines = parsed.lines,
        requests,
        bytes,
        "CloudFront log ingested"
    );
    Ok(true)
}
