//! `lifecycle_run` rows: one per sweep (and one per scheduled tick, whoever ran it).
use chrono::{DateTime, Utc};
use entity::lifecycle_run::{self, Column, Entity, Model, STATUS_FAILED, STATUS_RUNNING};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{report::Report, Trigger};
use crate::domain::catalog_time;

/// Inserts a `running` row. For a scheduled tick, `None` when another replica claimed it.
pub async fn start<C: ConnectionTrait>(
    db: &C,
    trigger: &Trigger,
    dry_run: bool,
    holder: &str,
) -> Result<Option<Model>, DbErr> {
    let row = lifecycle_run::ActiveModel {
        id: Set(Uuid::now_v7()),
        trigger: Set(trigger.name().to_owned()),
        tick: Set(trigger.tick()),
        dry_run: Set(dry_run),
        status: Set(STATUS_RUNNING.into()),
        holder: Set(holder.to_owned()),
        started_at: Set(catalog_time(Utc::now())),
        finished_at: Set(None),
        report: Set(json!(Report::default())),
        error: Set(None),
    };
    match row.insert(db).await {
        Ok(m) => Ok(Some(m)),
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
    run: &Model,
    status: &str,
    report: &Report,
    error: Option<String>,
) -> Result<Model, DbErr> {
    let mut done = run.clone();
    done.status = status.to_owned();
    done.finished_at = Some(catalog_time(Utc::now()));
    done.report = json!(report);
    done.error = error;
    let active: lifecycle_run::ActiveModel = done.clone().into();
    let mut active = active.reset_all();
    active.id = sea_orm::ActiveValue::Unchanged(done.id);
    active.update(db).await
}

/// Runs still `running` that `holder` does not own died with their process: whoever holds the
/// lease knows no one else is sweeping.
pub async fn close_interrupted<C: ConnectionTrait>(db: &C, current: Uuid) -> Result<u64, DbErr> {
    let res = Entity::update_many()
        .col_expr(Column::Status, Expr::value(STATUS_FAILED))
        .col_expr(
            Column::Error,
            Expr::value(Some(
                "interrupted: the process stopped before the run finished",
            )),
        )
        .col_expr(
            Column::FinishedAt,
            Expr::value(Some(catalog_time(Utc::now()))),
        )
        .filter(Column::Status.eq(STATUS_RUNNING))
        .filter(Column::Id.ne(current))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
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
