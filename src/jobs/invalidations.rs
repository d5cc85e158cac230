//! The CDN invalidation queue as a job ([`crate::cdn::invalidation::run`] does the work): every
//! minute, one replica sends what is queued to CloudFront. Its runs are recorded in `job_run`
//! (kept [`KEEP_RUNS_DAYS`]). Stopping mid-run is safe: unsent paths return to the queue, and a
//! re-sent batch carries the same CallerReference.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{record, Crash, Job, Outcome, RunContext, RunLog, Trigger, STATUS_PARTIAL};
use crate::cdn::invalidation::{self, Invalidator, Summary};

/// The job's name: its lease's and its runs' in `job_run`.
pub const NAME: &str = "invalidations";
/// How often the queue is sent.
pub const EVERY: Duration = Duration::from_secs(60);
/// Run records older than this are deleted (one a minute).
pub const KEEP_RUNS_DAYS: i64 = 7;

/// Sends the invalidation queue with this process's CloudFront client.
pub struct InvalidationsJob {
    pub db: DatabaseConnection,
    pub inv: Invalidator,
    pub holder: String,
}

impl Job for InvalidationsJob {
    type Report = Summary;

    fn name(&self) -> &'static str {
        NAME
    }

    /// As long as a claim on the queue's rows: a run ends far sooner.
    fn lease_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(invalidation::LEASE.as_secs() as i64)
    }

    fn runs(&self) -> RunLog {
        RunLog::Shared(NAME)
    }

    fn catalog(&self) -> &DatabaseConnection {
        &self.db
    }

    fn holder(&self) -> &str {
        &self.holder
    }

    async fn run(
        &self,
        cx: &RunContext,
        _trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<Outcome<Summary>, Crash> {
        let outcome = match invalidation::run_until(&self.db, &self.inv, now, &cx.stop).await {
            Ok(s) if s.failed > 0 || s.deferred > 0 => Outcome {
                status: STATUS_PARTIAL,
                report: s,
                error: None,
            },
            Ok(s) if cx.stop.is_cancelled() => Outcome::failed(s, "stopped by shutdown"),
            Ok(s) => Outcome::succeeded(s),
            Err(e) => {
                tracing::warn!(error = %e, "CDN invalidation run failed; the queue is retried at the next tick");
                Outcome::failed(Summary::default(), e)
            }
        };
        let old = now - chrono::Duration::days(KEEP_RUNS_DAYS);
        if let Err(e) = record::prune(&self.db, NAME, old).await {
            tracing::warn!(error = %e, "could not delete old invalidation run records");
        }
        Ok(outcome)
    }
}
