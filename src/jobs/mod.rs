//! Background jobs (DESIGN §7, §8), in the shape of crates.io's `crates_io_worker`: a [`Job`]
//! trait, one [`runner`] that runs every job the same way, and one file per job:
//!
//! - [`lifecycle`]: the lifecycle sweep (`CAIRN_LIFECYCLE_CRON`);
//! - [`metering`]: storage sample, CloudFront log ingest, reconcile (`CAIRN_METERING_CRON`);
//! - [`invalidations`]: the CDN invalidation queue, sent every minute;
//! - [`verify`]: the upload verifier, fed by a queue (not scheduled) and recovered at start.
//!
//! For a scheduled job the runner owns what the jobs once copied: the cron schedule
//! (tokio-cron-scheduler is used here only), the tick claim, the catalog [`lease`] with its
//! heartbeat, the run record ([`record`]), the closing of runs a crash left `running`, and
//! shutdown. A job only does its work, stopping at its next batch when [`RunContext::stop`] is
//! cancelled.
use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub mod invalidations;
pub mod lease;
pub mod lifecycle;
pub mod metering;
pub mod record;
pub mod runner;
pub mod verify;

pub use lease::{holder_id, Held, Lease};
pub use record::RunLog;
pub use runner::{execute, tick_of, RunError, Runner, Schedule};

/// A run's status, the same in every run table: `running`, then `succeeded`, `partial`
/// (finished, with work left for the next run), `failed`, or `skipped` (a scheduled tick whose
/// run did not start: the previous run still held the lease).
pub use entity::lifecycle_run::{
    STATUS_FAILED, STATUS_PARTIAL, STATUS_RUNNING, STATUS_SKIPPED, STATUS_SUCCEEDED,
};

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler, for the tick at this instant.
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

/// What the runner hands a job for one run.
pub struct RunContext {
    /// Cancelled on shutdown or when the lease is lost: the job stops at its next batch.
    pub stop: CancellationToken,
}

/// How a run ended, as its record shows it.
#[derive(Debug, Clone)]
pub struct Outcome<R> {
    /// [`STATUS_SUCCEEDED`], [`STATUS_PARTIAL`] or [`STATUS_FAILED`].
    pub status: &'static str,
    pub report: R,
    pub error: Option<String>,
}

impl<R> Outcome<R> {
    pub fn succeeded(report: R) -> Self {
        Self {
            status: STATUS_SUCCEEDED,
            report,
            error: None,
        }
    }

    pub fn failed(report: R, error: impl ToString) -> Self {
        Self {
            status: STATUS_FAILED,
            report,
            error: Some(error.to_string()),
        }
    }
}

/// A run that stopped dead, as a killed process would (tests): its record stays `running` and
/// its lease held until it expires.
#[derive(Debug)]
pub struct Crash(pub String);

/// A background job the [`runner`] runs. Implementors hold their own context (catalog, store,
/// settings), never the whole application.
pub trait Job: Send + Sync {
    /// What the job reports; the default is the report of a run that did nothing.
    type Report: Serialize + Default + Send;

    /// The job's name: its lease's, and its runs' in `job_run`.
    fn name(&self) -> &'static str;
    /// How long the lease lasts without renewal; the runner renews it every tenth of that.
    fn lease_ttl(&self) -> Duration;
    /// Where its runs are recorded.
    fn runs(&self) -> RunLog;
    fn catalog(&self) -> &DatabaseConnection;
    /// This process in leases and run records ([`holder_id`]).
    fn holder(&self) -> &str;
    /// Whether this run only reports what it would do (recorded on runs that have the column).
    fn dry_run(&self) -> bool {
        false
    }
    /// Does the work as of `now` (the job's clock; tests inject it).
    fn run(
        &self,
        cx: &RunContext,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Outcome<Self::Report>, Crash>> + Send;
}
