//! The operator API (`/admin`, tokens with `operator: true`): retention rules, the lifecycle
//! sweep's history and manual runs, every background job's runs, and requeueing the CDN
//! invalidations CloudFront refused.
use axum::{
    extract::{Path, Query, State},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::json::ApiJson;
use crate::{
    app::AppState,
    auth::Operator,
    domain::TenantId,
    error::{ApiError, ApiResult},
    jobs::{
        self,
        lifecycle::RunView,
        record::{JobRunView, JOBS},
        RunError, Trigger,
    },
    lifecycle::{policy, SweepOptions},
    problem::Code,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    rules: Vec<policy::Rule>,
}

#[derive(Debug, Serialize)]
pub struct RetentionView {
    tenant_id: String,
    rules: Vec<policy::Rule>,
    /// `CAIRN_RETENTION_DAYS`: applies where no rule does (`null`: keep).
    default_days: Option<u32>,
}

fn tenant(raw: &str) -> ApiResult<TenantId> {
    TenantId::parse(raw).map_err(|e| ApiError::bad_request(Code::InvalidTenant, e.detail))
}

async fn retention_view(app: &AppState, t: &TenantId) -> ApiResult<RetentionView> {
    Ok(RetentionView {
        tenant_id: t.to_string(),
        rules: policy::rules_of(&app.read, t).await?,
        default_days: app.config.lifecycle.default_retention_days,
    })
}

/// `PUT /admin/tenants/{tenant}/retention` `{rules: [{env?, kind?, days}]}`: replaces the
/// tenant's rules.
pub async fn put_retention(
    State(app): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RetentionBody>,
) -> ApiResult<Json<RetentionView>> {
    let t = tenant(&raw)?;
    policy::validate(&body.rules, &app.config.envs)
        .map_err(|e| ApiError::bad_request(Code::InvalidRetention, e.0))?;
    policy::replace(
        &app.db,
        &t,
        &body.rules,
        crate::domain::catalog_time(Utc::now()),
    )
    .await?;
    tracing::info!(tenant.id = %t, operator = %op.user, rules = body.rules.len(), "retention rules replaced");
    Ok(Json(retention_view(&app, &t).await?))
}

/// `GET /admin/tenants/{tenant}/retention`.
pub async fn get_retention(
    State(app): State<AppState>,
    _op: Operator,
    Path(raw): Path<String>,
) -> ApiResult<Json<RetentionView>> {
    let t = tenant(&raw)?;
    Ok(Json(retention_view(&app, &t).await?))
}

pub(super) fn flag(name: &str, v: Option<&str>) -> ApiResult<bool> {
    match v {
        None | Some("false") | Some("0") => Ok(false),
        Some("") | Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            Code::InvalidRequest,
            format!("`{name}` must be true or false, not `{other}`"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    dry_run: Option<String>,
    fix_orphans: Option<String>,
}

/// `POST /admin/lifecycle/run?dry_run=&fix_orphans=`: runs a sweep now and answers its record.
pub async fn run_lifecycle(
    State(app): State<AppState>,
    op: Operator,
    query: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<RunView>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(Code::InvalidRequest, e.body_text()))?;
    let opts = SweepOptions {
        dry_run: flag("dry_run", q.dry_run.as_deref())?,
        fix_orphans: flag("fix_orphans", q.fix_orphans.as_deref())?,
        ..Default::default()
    };
    tracing::info!(operator = %op.user, dry_run = opts.dry_run, "lifecycle sweep requested");
    match jobs::lifecycle::run(&app.lifecycle, Trigger::Api, &opts, Utc::now()).await {
        Ok(run) => Ok(Json(run.into())),
        Err(e @ RunError::Busy(_)) => {
            Err(ApiError::conflict(Code::LifecycleRunning, e.to_string()))
        }
        Err(RunError::Db(e)) => Err(e.into()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<String>,
    before: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunsView {
    runs: Vec<RunView>,
}

/// `limit` (1 to 500, 50 by default) and `before` (RFC 3339) of a runs listing.
fn page(q: &RunsQuery) -> ApiResult<(u64, Option<DateTime<Utc>>)> {
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(Code::InvalidRequest, "`limit` must be between 1 and 500")
            })?,
    };
    let before = match q.before.as_deref() {
        None => None,
        Some(v) => Some(
            DateTime::parse_from_rfc3339(v)
                .map_err(|_| {
                    ApiError::bad_request(Code::InvalidRequest, "`before` must be an RFC 3339 time")
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok((limit, before))
}

/// `GET /admin/lifecycle/runs?limit=&before=`: the latest runs first.
pub async fn list_runs(
    State(app): State<AppState>,
    _op: Operator,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<RunsView>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(Code::InvalidRequest, e.body_text()))?;
    let (limit, before) = page(&q)?;
    let runs = jobs::lifecycle::list(&app.read, limit, before).await?;
    Ok(Json(RunsView {
        runs: runs.into_iter().map(RunView::from).collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRunsQuery {
    job: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct JobRunsView {
    runs: Vec<JobRunView>,
}

/// `GET /admin/jobs/runs?job=&limit=&before=`: the latest runs of every scheduled job (or of
/// `job`: `lifecycle`, `metering`, `invalidations`), newest first.
pub async fn list_job_runs(
    State(app): State<AppState>,
    _op: Operator,
    query: Result<Query<JobRunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<JobRunsView>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(Code::InvalidRequest, e.body_text()))?;
    let job =
        match q.job.as_deref() {
            None => None,
            Some(name) => Some(JOBS.into_iter().find(|log| log.name() == name).ok_or_else(
                || {
                    let names: Vec<&str> = JOBS.iter().map(|log| log.name()).collect();
                    ApiError::bad_request(
                        Code::InvalidRequest,
                        format!("`job` must be one of {}", names.join(", ")),
                    )
                },
            )?),
        };
    let (limit, before) = page(&RunsQuery {
        limit: q.limit,
        before: q.before,
    })?;
    let runs = jobs::record::list_jobs(&app.read, job, limit, before).await?;
    Ok(Json(JobRunsView { runs }))
}

#[derive(Debug, Serialize)]
pub struct RequeuedView {
    /// `failed` invalidation rows put back in the queue.
    requeued: u64,
}

/// `POST /admin/cdn/invalidations/requeue`: puts the invalidations CloudFront refused (`failed`)
/// back in the queue, once the cause is fixed; the next run sends them.
pub async fn requeue_invalidations(
    State(app): State<AppState>,
    op: Operator,
) -> ApiResult<Json<RequeuedView>> {
    let requeued = crate::cdn::invalidation::requeue_failed(&app.db).await?;
    tracing::info!(operator = %op.user, requeued, "failed CDN invalidations requeued");
    Ok(Json(RequeuedView { requeued }))
}
