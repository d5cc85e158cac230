//! The lifecycle sweep as a job ([`crate::lifecycle::sweep`] does the work), recorded in
//! `lifecycle_run`, and [`run`]: the entry point the schedule, `cairn lifecycle run` and
//! `POST /admin/lifecycle/run` share.
use chrono::{DateTime, Duration, Utc};
use entity::lifecycle_run::{Column, Entity, Model};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

use super::{execute, Crash, Job, Outcome, RunContext, RunError, RunLog, Trigger, STATUS_PARTIAL};
use crate::lifecycle::{record_metrics, sweep, Lifecycle, Report, SweepError, SweepOptions};

/// The lease every sweep takes, and the job's name.
pub const LEASE: &str = "lifecycle";
/// How long a lease lasts without renewal; the runner renews it every 30 s.
pub const LEASE_TTL_SECS: i64 = 300;

/// One sweep with its options.
pub struct SweepJob {
    pub lc: Lifecycle,
    pub opts: SweepOptions,
}

impl Job for SweepJob {
    type Report = Report;

    fn name(&self) -> &'static str {
        LEASE
    }

    fn lease_ttl(&self) -> Duration {
        Duration::seconds(LEASE_TTL_SECS)
    }

    fn runs(&self) -> RunLog {
        RunLog::Lifecycle
    }

    fn catalog(&self) -> &DatabaseConnection {
        &self.lc.db
    }

    fn holder(&self) -> &str {
        &self.lc.holder
    }

    fn dry_run(&self) -> bool {
        self.opts.dry_run
    }

    async fn run(
        &self,
        cx: &RunContext,
        _trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<Outcome<Report>, Crash> {
        let opts = SweepOptions {
            stop: Some(cx.stop.clone()),
            ..self.opts.clone()
        };
        let (report, result) = sweep(&self.lc, &opts, now).await;
        let outcome = match result {
            Err(SweepError::Injected(at)) => {
                return Err(Crash(SweepError::Injected(at).to_string()))
            }
            Ok(()) if report.has_errors() || report.objects_pending > 0 => Outcome {
                status: STATUS_PARTIAL,
                report,
                error: None,
            },
            Ok(()) => Outcome::succeeded(report),
            Err(e) => Outcome::failed(report, e),
        };
        let report = &outcome.report;
        if !opts.dry_run {
            record_metrics(report, outcome.status);
        }
        tracing::info!(
            status = outcome.status,
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
        Ok(outcome)
    }
}

/// Runs one sweep as of `now` (the decisions' clock; tests inject it) through the job runner
/// (tick claim, lease, record) and answers its record. `opts.stop` stops it between batches.
pub async fn run(
    lc: &Lifecycle,
    trigger: Trigger,
    opts: &SweepOptions,
    now: DateTime<Utc>,
) -> Result<Model, RunError> {
    let job = SweepJob {
        lc: lc.clone(),
        opts: opts.clone(),
    };
    let stop = opts.stop.clone().unwrap_or_default();
    let done = execute(&job, trigger, now, &stop).await?;
    Entity::find_by_id(done.id)
        .one(&lc.db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("lifecycle run {}", done.id)).into())
}

/// The latest runs first, optionally only those started before `before`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    limit: u64,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<Model>, DbErr> {
    let mut q = Entity::find();
    if let Some(b) = before {
        q = q.filter(Column::StartedAt.lt(b));
    }
    q.order_by_desc(Column::StartedAt)
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(db)
        .await
}

#[derive(Debug, Serialize)]
/// A run as the API and `cairn lifecycle run --json` show it.
pub struct RunView {
    pub run_id: Uuid,
    pub trigger: String,
    pub tick: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub status: String,
    pub holder: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub report: serde_json::Value,
    /// [`Report::bytes_reclaimed`] of the report: what the store held and no longer holds.
    pub bytes_reclaimed: Option<u64>,
    pub error: Option<String>,
}

impl From<Model> for RunView {
    fn from(r: Model) -> Self {
        Self {
            run_id: r.id,
            trigger: r.trigger,
            tick: r.tick,
            dry_run: r.dry_run,
            status: r.status,
            holder: r.holder,
            started_at: r.started_at,
            finished_at: r.finished_at,
            bytes_reclaimed: serde_json::from_value::<Report>(r.report.clone())
                .ok()
                .map(|report| report.bytes_reclaimed()),
            report: r.report,
            error: r.error,
        }
    }
}
