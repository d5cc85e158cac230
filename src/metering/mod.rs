//! Metering (DESIGN §8): exact usage counters per tenant+env ([`crate::usage`], kept by every change
//! in its own transaction; reads are added up in memory and recorded in batches, [`buffer`]),
//! quotas ([`quota`]), and the metering job's work ([`steps`]): a storage sample into
//! `usage_daily`, CloudFront log ingest ([`ingest`]) and a reconcile check ([`reconcile`]).
//! The job runner leases and records it (`jobs::metering`), so one replica runs each tick.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, PaginatorTrait};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{config::MeteringConfig, storage::ObjectStore};

pub mod cdn_log;
pub mod ingest;
pub mod quota;
pub mod reconcile;
pub mod report;
pub mod snapshot;

/// What the metering job works with.
#[derive(Clone)]
pub struct Metering {
    pub db: DatabaseConnection,
    /// Where CloudFront's log files are read: the log bucket of `CAIRN_CDN_LOG_PREFIX`
    /// (`s3://<bucket>/...`, through the object store's client), else the object store.
    pub store: Arc<dyn ObjectStore>,
    pub config: MeteringConfig,
    pub envs: Vec<String>,
    pub holder: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Set drifted counters to the recount (otherwise drift is only reported).
    pub fix_drift: bool,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Tenant+env rows sampled into today's `usage_daily`.
    pub sampled: u64,
    /// CloudFront logs (absent without `CAIRN_CDN_LOG_PREFIX`).
    pub cdn_logs: Option<ingest::IngestReport>,
    pub drift: Vec<reconcile::Drift>,
    pub drift_fixed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("catalog: {0}")]
    Db(#[from] DbErr),
    #[error("stopped by shutdown")]
    Cancelled,
}

/// The metering job's steps as of `now` (the day samples and activity land on; tests inject
/// it): what they did, and whether they ended early. `stop` is checked before each step. Neither
/// leases nor records: the job runner does.
pub async fn steps(
    m: &Metering,
    opts: RunOptions,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> (RunReport, Result<(), StepError>) {
    let mut report = RunReport::default();
    let result = async {
        let checkpoint = || match stop.is_cancelled() {
            true => Err(StepError::Cancelled),
            false => Ok(()),
        };
        checkpoint()?;
        report.sampled = snapshot::sample(&m.db, now).await?;
        checkpoint()?;
        if let Some(prefix) = &m.config.cdn_log_prefix {
            report.cdn_logs = Some(ingest::ingest(&m.db, &*m.store, prefix, &m.envs, now).await?);
            checkpoint()?;
        }
        report.drift = reconcile::reconcile(&m.db, opts.fix_drift, now).await?;
        report.drift_fixed = opts.fix_drift && !report.drift.is_empty();
        Ok::<(), StepError>(())
    }
    .await;
    (report, result)
}

/// A catalog that holds items but no counters yet (upgraded from before metering) gets its
/// counters from a recount, once.
pub async fn backfill_if_new(db: &DatabaseConnection) -> Result<(), DbErr> {
    if entity::usage::Entity::find().count(db).await? > 0 {
        return Ok(());
    }
    let drift = reconcile::reconcile(db, true, Utc::now()).await?;
    if !drift.is_empty() {
        tracing::info!(
            counters = drift.len(),
            "usage counters initialised from the catalog"
        );
    }
    Ok(())
}

/// Per-tenant gauges for `/metrics` (tenants only: bounded cardinality).
pub async fn refresh_gauges(db: &DatabaseConnection) -> Result<(), DbErr> {
    use std::collections::BTreeMap;
    let rows = entity::usage::Entity::find().all(db).await?;
    let quotas = quota::all(db).await?;
    let mut per: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for u in &rows {
        let t = per.entry(u.tenant_id.as_str()).or_default();
        t.0 += u.objects;
        t.1 += u.logical_bytes;
        t.2 += u.physical_bytes;
    }
    for (tenant, (objects, logical, physical)) in per {
        let t = tenant.to_owned();
        metrics::gauge!("cairn_tenant_objects", "tenant" => t.clone()).set(objects as f64);
        metrics::gauge!("cairn_tenant_logical_bytes", "tenant" => t.clone()).set(logical as f64);
        metrics::gauge!("cairn_tenant_physical_bytes", "tenant" => t.clone()).set(physical as f64);
        if let Some(max) = quotas.get(tenant).and_then(|q| q.max_bytes) {
            let ratio = if max > 0 {
                logical as f64 / max as f64
            } else {
                1.0
            };
            metrics::gauge!("cairn_tenant_quota_bytes_ratio", "tenant" => t).set(ratio);
        }
    }
    Ok(())
}
