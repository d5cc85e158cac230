//! Lifecycle (DESIGN §7): retention, abandoned uploads, soft delete, purge and orphan checks, run
//! by one idempotent [`run`] that the scheduler, `cairn lifecycle run` and
//! `POST /admin/lifecycle/run` all call. A lease in the catalog keeps sweeps from overlapping;
//! a scheduled tick is claimed by a unique row, so one replica runs each tick.
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::lifecycle_run::{
    self, STATUS_FAILED, STATUS_PARTIAL, STATUS_SKIPPED, STATUS_SUCCEEDED,
};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio_util::sync::CancellationToken;

use crate::{config::LifecycleConfig, storage::ObjectStore};

pub mod lease;
pub mod policy;
pub mod report;
pub mod runs;
pub mod schedule;
mod sweep;

pub use lease::{Held, Lease};
pub use report::Report;
pub use sweep::ACTOR;

/// The lease every sweep takes.
pub const LEASE: &str = "lifecycle";
/// How long a lease lasts without renewal; a sweep renews it every 30 s.
pub const LEASE_TTL_SECS: i64 = 300;

/// What a sweep works with.
pub struct Lifecycle {
    pub db: DatabaseConnection,
    pub store: Arc<dyn ObjectStore>,
    pub config: LifecycleConfig,
    /// Queue CDN invalidations for removed public objects (a distribution is configured).
    pub invalidate: bool,
    /// This process in leases and run records.
    pub holder: String,
}

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler, for the cron tick at this instant.
    Schedule(DateTime<Utc>),
    Cli,
    Api,
}

impl Trigger {
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Schedule(_) => "schedule",
            Trigger::Cli => "cli",
            Trigger::Api => "api",
        }
    }

    pub fn tick(&self) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Schedule(t) => Some(*t),
            _ => None,
        }
    }
}

/// Reports progress: the step and how many items it has done.
pub type Progress = Arc<dyn Fn(&'static str, u64) + Send + Sync>;

#[derive(Clone, Default)]
pub struct SweepOptions {
    /// Report what a real run would do, changing nothing.
    pub dry_run: bool,
    /// Remove orphan objects instead of only reporting them.
    pub fix_orphans: bool,
    /// One DeleteObject per object instead of multi-object deletes (the benchmark's baseline).
    pub single_deletes: bool,
    /// Stops the sweep between batches (graceful shutdown).
    pub stop: Option<CancellationToken>,
    pub progress: Option<Progress>,
    /// Tests: stop dead at this point, as a killed process would (the lease stays held).
    #[doc(hidden)]
    pub crash_after: Option<CrashPoint>,
}

/// Points of a sweep where a test can simulate a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Abandoned uploads marked `failed`, their blobs `deleting`; nothing removed yet.
    AbandonedCommitted,
    /// A purge batch committed: rows gone, blobs `deleting`; objects not yet removed.
    PurgeCommitted,
    /// Objects removed from the store; their blob rows not yet confirmed.
    ObjectsDeleted,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("catalog: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    #[error("the lifecycle lease was lost to another replica; stopped")]
    LeaseLost,
    #[error("stopped by shutdown")]
    Cancelled,
    #[error("simulated crash after {0:?}")]
    Injected(CrashPoint),
    /// A catalog row names a tenant or env that is not a valid scope.
    #[error("catalog row with scope {tenant}/{env}: {detail}")]
    BadScope {
        tenant: String,
        env: String,
        detail: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a lifecycle sweep is already running on {} (lease until {})", .0.holder, .0.expires_at)]
    Busy(Held),
    #[error("another replica runs this tick")]
    TickTaken,
    #[error("catalog: {0}")]
    Db(#[from] DbErr),
    /// A simulated crash (tests): the run row stays `running` and the lease held.
    #[error(transparent)]
    Crashed(SweepError),
}

impl Lifecycle {
    /// A lease for one run. Its holder token is new each time, so a process whose previous sweep
    /// still runs (a tick won while sweeping) finds the lease held, even by itself.
    pub fn lease(&self) -> Lease {
        let run = uuid::Uuid::now_v7().simple().to_string();
        Lease::new(
            LEASE,
            format!("{}:{}", self.holder, &run[run.len() - 8..]),
            Duration::seconds(LEASE_TTL_SECS),
        )
    }
}

/// Runs one sweep as of `now` (the decisions' clock; tests inject it) and records it. A dry run
/// executes inside a catalog transaction that is rolled back, with store changes only counted.
pub async fn run(
    lc: &Lifecycle,
    trigger: Trigger,
    opts: &SweepOptions,
    now: DateTime<Utc>,
) -> Result<lifecycle_run::Model, RunError> {
    let lease = lc.lease();
    // A tick is claimed before the lease: the row is what makes it one run per tick.
    let claimed = match trigger {
        Trigger::Schedule(_) => {
            match runs::start(&lc.db, &trigger, opts.dry_run, &lc.holder).await? {
                Some(row) => Some(row),
                None => return Err(RunError::TickTaken),
            }
        }
        _ => None,
    };
    if let Err(held) = lease.acquire(&lc.db).await? {
        if let Some(row) = claimed {
            let why = format!("a sweep was still running on {}", held.holder);
            runs::finish(&lc.db, &row, STATUS_SKIPPED, &Report::default(), Some(why)).await?;
        }
        return Err(RunError::Busy(held));
    }
    let row = match claimed {
        Some(row) => row,
        None => runs::start(&lc.db, &trigger, opts.dry_run, &lc.holder)
            .await?
            .ok_or_else(|| DbErr::Custom("the run row was not inserted".into()))?,
    };
    let interrupted = runs::close_interrupted(&lc.db, row.id).await?;
    if interrupted > 0 {
        tracing::warn!(
            runs = interrupted,
            "closed lifecycle runs whose process stopped mid-sweep"
        );
    }
    tracing::info!(run.id = %row.id, trigger = trigger.name(), dry_run = opts.dry_run, %now, "lifecycle sweep started");
    let (report, result) = if opts.dry_run {
        let txn = lc.db.begin().await?;
        let mut s = sweep::Sweep::new(lc, &txn, now, opts, &lease);
        let result = s.run().await;
        let report = s.report;
        txn.rollback().await?;
        (report, result)
    } else {
        let mut s = sweep::Sweep::new(lc, &lc.db, now, opts, &lease);
        let result = s.run().await;
        (s.report, result)
    };
    if let Err(SweepError::Injected(at)) = result {
        return Err(RunError::Crashed(SweepError::Injected(at)));
    }
    let (status, error) = match &result {
        Ok(()) if report.has_errors() || report.objects_pending > 0 => (STATUS_PARTIAL, None),
        Ok(()) => (STATUS_SUCCEEDED, None),
        Err(e) => (STATUS_FAILED, Some(e.to_string())),
    };
    let done = runs::finish(&lc.db, &row, status, &report, error).await;
    if let Err(e) = lease.release(&lc.db).await {
        tracing::warn!(error = %e, "could not release the lifecycle lease; it expires on its own");
    }
    let done = done?;
    if !opts.dry_run {
        record_metrics(&report, status);
    }
    tracing::info!(
        run.id = %done.id,
        status,
        dry_run = opts.dry_run,
        abandoned = report.abandoned.count,
        expired = report.expired.count + report.retention.count,
        purged = report.purged.count,
        objects_removed = report.objects_deleted.count,
        bytes_reclaimed = report.bytes_reclaimed(),
        orphans = report.orphans.found.count,
        orphan_temp_files = report.orphan_temp_files.found.count,
        errors = report.errors.len(),
        "lifecycle sweep finished"
    );
    Ok(done)
}

fn record_metrics(report: &Report, status: &'static str) {
    metrics::counter!("cairn_lifecycle_runs_total", "status" => status).increment(1);
    for (step, tally) in [
        ("abandoned", report.abandoned),
        ("expired", report.expired),
        ("retention", report.retention),
        ("purged", report.purged),
    ] {
        metrics::counter!("cairn_lifecycle_items_total", "step" => step).increment(tally.count);
    }
    metrics::counter!("cairn_lifecycle_items_reclaimed_total").increment(
        report.objects_deleted.count
            + report.orphans.removed.count
            + report.orphan_temp_files.removed.count,
    );
    metrics::counter!("cairn_lifecycle_bytes_reclaimed_total").increment(report.bytes_reclaimed());
    metrics::counter!("cairn_lifecycle_orphans_found_total").increment(report.orphans.found.count);
    metrics::counter!("cairn_lifecycle_orphan_temp_files_found_total")
        .increment(report.orphan_temp_files.found.count);
}
