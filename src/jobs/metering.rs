//! The metering job ([`crate::metering::steps`] does the work), recorded in `metering_run`, and
//! [`run`]: the entry point the schedule and `POST /admin/metering/run` share.
use chrono::{DateTime, Duration, Utc};
use entity::metering_run::{Entity, Model};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};

use super::{execute, Crash, Job, Outcome, RunContext, RunError, RunLog, Trigger};
use crate::metering::{steps, Metering, RunOptions, RunReport};

/// The lease every metering run takes, and the job's name.
pub const LEASE: &str = "metering";
/// How long a lease lasts without renewal; the runner renews it every 30 s.
pub const LEASE_TTL_SECS: i64 = 300;

/// One metering run with its options.
pub struct MeteringJob {
    pub m: Metering,
    pub opts: RunOptions,
}

impl Job for MeteringJob {
    type Report = RunReport;

    fn name(&self) -> &'static str {
        LEASE
    }

    fn lease_ttl(&self) -> Duration {
        Duration::seconds(LEASE_TTL_SECS)
    }

    fn runs(&self) -> RunLog {
        RunLog::Metering
    }

    fn catalog(&self) -> &DatabaseConnection {
        &self.m.db
    }

    fn holder(&self) -> &str {
        &self.m.holder
    }

    async fn run(
        &self,
        cx: &RunContext,
        _trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<Outcome<RunReport>, Crash> {
        let (r, result) = steps(&self.m, self.opts, now, &cx.stop).await;
        let cdn = r.cdn_logs.as_ref();
        match &result {
            Ok(()) => tracing::info!(
                sampled = r.sampled,
                drift = r.drift.len(),
                cdn_files = cdn.map_or(0, |l| l.files),
                cdn_failed = cdn.map_or(0, |l| l.failed),
                "metering run finished"
            ),
            Err(e) => tracing::error!(error = %e, "metering run failed"),
        }
        let outcome = match result {
            Ok(()) => Outcome::succeeded(r),
            Err(e) => Outcome::failed(r, e),
        };
        metrics::counter!("cairn_metering_runs_total", "status" => outcome.status).increment(1);
        Ok(outcome)
    }
}

/// One metering run as of `now` (the day samples and activity land on; tests inject it)
/// through the job runner (tick claim, lease, record); answers its record.
pub async fn run(
    m: &Metering,
    trigger: Trigger,
    opts: RunOptions,
    now: DateTime<Utc>,
) -> Result<Model, RunError> {
    let job = MeteringJob { m: m.clone(), opts };
    let done = execute(&job, trigger, now, &Default::default()).await?;
    Entity::find_by_id(done.id)
        .one(&m.db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("metering run {}", done.id)).into())
}
