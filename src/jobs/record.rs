//! Run records: one row per run, and one per scheduled tick whoever ran it (the tick column is
//! unique, so inserting the row is what claims the tick). The lifecycle sweep and the metering
//! job record into their own tables (`lifecycle_run`, `metering_run`), other jobs into `job_run`;
//! the three share their columns, so the runner writes them alike. [`list`] reads them for
//! `GET /admin/jobs/runs`.
use chrono::{DateTime, Utc};
use entity::job_run;
use sea_orm::{
    sea_query::{Alias, Expr, Order, Query, SimpleExpr},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, SqlErr,
};
use serde::Serialize;
use uuid::Uuid;

use super::{Trigger, STATUS_FAILED, STATUS_RUNNING};
use crate::values::catalog_time;

/// Where a job's runs are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLog {
    /// `lifecycle_run` (it has a `dry_run` column).
    Lifecycle,
    /// `metering_run`.
    Metering,
    /// `job_run`, under this job name.
    Shared(&'static str),
}

/// The jobs whose runs the operator API lists.
pub const JOBS: [RunLog; 3] = [
    RunLog::Lifecycle,
    RunLog::Metering,
    RunLog::Shared(super::invalidations::NAME),
];

impl RunLog {
    /// The job's name in the operator API.
    pub fn name(self) -> &'static str {
        match self {
            RunLog::Lifecycle => "lifecycle",
            RunLog::Metering => "metering",
            RunLog::Shared(job) => job,
        }
    }

    fn table(self) -> Alias {
        Alias::new(match self {
            RunLog::Lifecycle => "lifecycle_run",
            RunLog::Metering => "metering_run",
            RunLog::Shared(_) => "job_run",
        })
    }

    /// Only this job's rows of the table.
    fn only_this_job(self) -> Option<SimpleExpr> {
        match self {
            RunLog::Shared(job) => Some(Expr::col(Alias::new("job")).eq(job)),
            _ => None,
        }
    }
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Inserts a `running` row with `report` (an empty report). For a scheduled tick, `None` when
/// another replica claimed it.
pub async fn start<C: ConnectionTrait>(
    db: &C,
    log: RunLog,
    trigger: &Trigger,
    dry_run: bool,
    holder: &str,
    report: serde_json::Value,
) -> Result<Option<Uuid>, DbErr> {
    let id = Uuid::now_v7();
    let mut cols = vec![
        col("id"),
        col("trigger"),
        col("tick"),
        col("status"),
        col("holder"),
        col("started_at"),
        col("report"),
    ];
    let mut values: Vec<SimpleExpr> = vec![
        Expr::value(id),
        Expr::value(trigger.name()),
        Expr::value(trigger.tick().map(catalog_time)),
        Expr::value(STATUS_RUNNING),
        Expr::value(holder),
        Expr::value(catalog_time(Utc::now())),
        Expr::value(report),
    ];
    match log {
        RunLog::Lifecycle => {
            cols.push(col("dry_run"));
            values.push(Expr::value(dry_run));
        }
        RunLog::Shared(job) => {
            cols.push(col("job"));
            values.push(Expr::value(job));
        }
        RunLog::Metering => {}
    }
    let insert = Query::insert()
        .into_table(log.table())
        .columns(cols)
        .values_panic(values)
        .to_owned();
    match db.execute(db.get_database_backend().build(&insert)).await {
        Ok(_) => Ok(Some(id)),
        Err(e)
            if trigger.tick().is_some()
                && matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Records how a run ended.
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    log: RunLog,
    id: Uuid,
    status: &str,
    report: serde_json::Value,
    error: Option<String>,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(log.table())
        .value(col("status"), status)
        .value(col("finished_at"), Some(catalog_time(Utc::now())))
        .value(col("report"), report)
        .value(col("error"), error)
        .and_where(Expr::col(col("id")).eq(id))
        .to_owned();
    db.execute(db.get_database_backend().build(&update))
        .await
        .map(|_| ())
}

/// Closes the job's runs still `running` other than `current`: their process died mid-run.
/// Only the lease's holder calls it, so no other run of the job is going on.
pub async fn close_interrupted<C: ConnectionTrait>(
    db: &C,
    log: RunLog,
    current: Uuid,
) -> Result<u64, DbErr> {
    let mut update = Query::update()
        .table(log.table())
        .value(col("status"), STATUS_FAILED)
        .value(
            col("error"),
            "interrupted: the process stopped before the run finished",
        )
        .value(col("finished_at"), Some(catalog_time(Utc::now())))
        .and_where(Expr::col(col("status")).eq(STATUS_RUNNING))
        .and_where(Expr::col(col("id")).ne(current))
        .to_owned();
    if let Some(job) = log.only_this_job() {
        update.and_where(job);
    }
    let res = db.execute(db.get_database_backend().build(&update)).await?;
    Ok(res.rows_affected())
}

/// A run of any job, as `GET /admin/jobs/runs` shows it.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct JobRunView {
    pub job: String,
    pub run_id: Uuid,
    pub trigger: String,
    pub tick: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub status: String,
    pub holder: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub report: serde_json::Value,
    pub error: Option<String>,
}

/// The latest runs of `log`, first, optionally only those started before `before`: one query
/// over the columns the three tables share, as [`start`] and [`finish`] write them.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    log: RunLog,
    limit: u64,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<JobRunView>, DbErr> {
    let mut q = Query::select();
    q.from(log.table())
        .expr_as(
            match log {
                RunLog::Shared(_) => SimpleExpr::from(Expr::col(col("job"))),
                _ => Expr::val(log.name()).into(),
            },
            col("job"),
        )
        .expr_as(Expr::col(col("id")), col("run_id"))
        .columns([col("trigger"), col("tick"), col("status"), col("holder")])
        .expr_as(
            match log {
                RunLog::Lifecycle => SimpleExpr::from(Expr::col(col("dry_run"))),
                _ => Expr::val(false).into(),
            },
            col("dry_run"),
        )
        .columns([
            col("started_at"),
            col("finished_at"),
            col("report"),
            col("error"),
        ])
        .order_by(col("started_at"), Order::Desc)
        .order_by(col("id"), Order::Desc)
        .limit(limit);
    if let Some(job) = log.only_this_job() {
        q.and_where(job);
    }
    if let Some(b) = before {
        q.and_where(Expr::col(col("started_at")).lt(b));
    }
    JobRunView::find_by_statement(db.get_database_backend().build(&q))
        .all(db)
        .await
}

/// The latest runs of every job in [`JOBS`] (or of the one named), newest first.
pub async fn list_jobs<C: ConnectionTrait>(
    db: &C,
    job: Option<RunLog>,
    limit: u64,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<JobRunView>, DbErr> {
    let mut runs = Vec::new();
    for log in JOBS {
        if job.is_none_or(|j| j == log) {
            runs.extend(list(db, log, limit, before).await?);
        }
    }
    runs.sort_by_key(|r| std::cmp::Reverse((r.started_at, r.run_id)));
    runs.truncate(limit as usize);
    Ok(runs)
}

/// Deletes `job`'s finished `job_run` rows started before `before` (the invalidation job records
/// one a minute).
pub async fn prune<C: ConnectionTrait>(
    db: &C,
    job: &'static str,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = job_run::Entity::delete_many()
        .filter(job_run::Column::Job.eq(job))
        .filter(job_run::Column::StartedAt.lt(before))
        .filter(job_run::Column::Status.ne(STATUS_RUNNING))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
