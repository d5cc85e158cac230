//! Metering (DESIGN §8): exact usage counters per tenant+env ([`crate::usage`], kept by every change
//! in its own transaction; reads are added up in memory and recorded in batches, [`buffer`]),
//! quotas ([`quota`]), and the metering job ([`run`]): a storage sample
//! into `usage_daily`, CloudFront log ingest ([`ingest`]) and a reconcile check
//! ([`reconcile`]). Like the lifecycle sweep, the job takes the catalog lease `metering`, and a
//! scheduled tick is claimed by a unique `metering_run` row, so one replica runs each tick.
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::metering_run::{self, STATUS_FAILED, STATUS_RUNNING, STATUS_SUCCEEDED};
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, Set, SqlErr,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    config::MeteringConfig,
    lifecycle::{Held, Lease, Trigger},
    storage::ObjectStore,
};

pub mod buffer;
pub mod cdn_log;
pub mod ingest;
pub mod quota;
pub mod reconcile;
pub mod report;
pub mod schedule;
pub mod snapshot;

pub const LEASE: &str = "metering";
pub const LEASE_TTL_SECS: i64 = 300;

/// What the metering job works with.
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
pub enum RunError {
    #[error("a metering run is already going on {} (lease until {})", .0.holder, .0.expires_at)]
    Busy(Held),
    #[error("another replica runs this tick")]
    TickTaken,
    #[error("catalog: {0}")]
    Db(#[from] DbErr),
}

impl Metering {
    fn lease(&self) -> Lease {
        let run = Uuid::now_v7().simple().to_string();
        Lease::new(
            LEASE,
            format!("{}:{}", self.holder, &run[run.len() - 8..]),
            Duration::seconds(LEASE_TTL_SECS),
        )
    }
}

/// One metering run as of `now` (the day samples and activity land on; tests inject it).
pub async fn run(
    m: &Metering,
    trigger: Trigger,
    opts: RunOptions,
    now: DateTime<Utc>,
) -> Result<metering_run::Model, RunError> {
    let lease = m.lease();
    let row = metering_run::ActiveModel {
        id: Set(Uuid::now_v7()),
        trigger: Set(trigger.name().to_owned()),
        tick: Set(trigger.tick()),
        status: Set(STATUS_RUNNING.into()),
        holder: Set(m.holder.clone()),
        started_at: Set(crate::domain::catalog_time(Utc::now())),
        finished_at: Set(None),
        report: Set(serde_json::json!(RunReport::default())),
        error: Set(None),
    };
    if let Err(held) = lease.acquire(&m.db).await? {
        return Err(RunError::Busy(held));
    }
    let row = match row.insert(&m.db).await {
        Ok(r) => r,
        Err(e) => {
            lease.release(&m.db).await.ok();
            return Err(match e.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => RunError::TickTaken,
                _ => e.into(),
            });
        }
    };
    let result = steps(m, opts, now).await;
    let mut done: metering_run::ActiveModel = row.into();
    done.finished_at = Set(Some(crate::domain::catalog_time(Utc::now())));
    match &result {
        Ok(report) => {
            done.status = Set(STATUS_SUCCEEDED.into());
            done.report = Set(serde_json::json!(report));
        }
        Err(e) => {
            done.status = Set(STATUS_FAILED.into());
            done.error = Set(Some(e.to_string()));
        }
    }
    let done = done.update(&m.db).await;
    if let Err(e) = lease.release(&m.db).await {
        tracing::warn!(error = %e, "could not release the metering lease; it expires on its own");
    }
    let done = done?;
    metrics::counter!("cairn_metering_runs_total", "status" => done.status.clone()).increment(1);
    match result {
        Ok(r) => {
            tracing::info!(run.id = %done.id, sampled = r.sampled, drift = r.drift.len(), cdn_files = r.cdn_logs.as_ref().map_or(0, |l| l.files), cdn_failed = r.cdn_logs.as_ref().map_or(0, |l| l.failed), "metering run finished")
        }
        Err(e) => tracing::error!(run.id = %done.id, error = %e, "metering run failed"),
    }
    Ok(done)
}

async fn steps(m: &Metering, opts: RunOptions, now: DateTime<Utc>) -> Result<RunReport, DbErr> {
    let sampled = snapshot::sample(&m.db, now).await?;
    let cdn_logs = match &m.config.cdn_log_prefix {
        Some(prefix) => Some(ingest::ingest(&m.db, &*m.store, prefix, &m.envs, now).await?),
        None => None,
    };
    let drift = reconcile::reconcile(&m.db, opts.fix_drift, now).await?;
    Ok(RunReport {
        sampled,
        cdn_logs,
        drift_fixed: opts.fix_drift && !drift.is_empty(),
        drift,
    })
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
