//! Lifecycle (DESIGN §7): retention, abandoned uploads, soft delete, purge and orphan checks,
//! done by one idempotent [`sweep`]. Runs are recorded and kept from overlapping by the job
//! runner: `jobs::lifecycle::run` is what the schedule, `cairn lifecycle run` and
//! `POST /admin/lifecycle/run` all call.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio_util::sync::CancellationToken;

use crate::{config::LifecycleConfig, storage::ObjectStore};

pub mod policy;
pub mod report;
mod sweep;

pub use report::Report;
pub use sweep::ACTOR;

/// What a sweep works with.
#[derive(Clone)]
pub struct Lifecycle {
    pub db: DatabaseConnection,
    pub store: Arc<dyn ObjectStore>,
    pub config: LifecycleConfig,
    /// Queue CDN invalidations for removed public objects (a distribution is configured).
    pub invalidate: bool,
    /// This process in leases and run records (`jobs::holder_id`).
    pub holder: String,
}

/// Reports progress: the step and how many items it has done.
pub type Progress = Arc<dyn Fn(&'static str, u64) + Send + Sync>;

#[derive(Clone, Default)]
pub struct SweepOptions {
    /// Report what a real run would do, changing nothing.
    pub dry_run: bool,
    /// Remove orphan objects instead of only reporting them.
    pub fix_orphans: bool,
    /// Stops the sweep between batches (shutdown, or the job runner lost the lease).
    pub stop: Option<CancellationToken>,
    pub progress: Option<Progress>,
    /// Benchmarks: one DeleteObject per object instead of multi-object deletes (the baseline).
    #[cfg(feature = "testing")]
    pub single_deletes: bool,
    /// Tests: stop dead at this point, as a killed process would (the run record stays
    /// `running` and the lease held).
    #[cfg(feature = "testing")]
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

/// One sweep as of `now` (the decisions' clock; tests inject it): what it did, and whether it
/// ended early. A dry run executes inside a catalog transaction that is rolled back, with store
/// changes only counted. It neither leases nor records: the job runner does.
pub async fn sweep(
    lc: &Lifecycle,
    opts: &SweepOptions,
    now: DateTime<Utc>,
) -> (Report, Result<(), SweepError>) {
    if opts.stop.as_ref().is_some_and(|t| t.is_cancelled()) {
        return (Report::default(), Err(SweepError::Cancelled));
    }
    if opts.dry_run {
        let txn = match lc.db.begin().await {
            Ok(txn) => txn,
            Err(e) => return (Report::default(), Err(e.into())),
        };
        let mut s = sweep::Sweep::new(lc, &txn, now, opts);
        let result = s.run().await;
        let report = s.report;
        match txn.rollback().await {
            Ok(()) => (report, result),
            Err(e) => (report, result.and(Err(e.into()))),
        }
    } else {
        let mut s = sweep::Sweep::new(lc, &lc.db, now, opts);
        let result = s.run().await;
        (s.report, result)
    }
}

/// Counts a finished (not dry) sweep in the metrics.
pub fn record_metrics(report: &Report, status: &'static str) {
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
