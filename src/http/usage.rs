//! The operator API of metering (`/admin`, tokens with `operator: true`): usage rows (JSON or
//! CSV), a tenant's daily series, quotas, a metering run on demand, and the dashboard page.
use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap},
    response::{Html, IntoResponse, Response},
    Json,
};
use chrono::{Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::json::ApiJson;
use crate::{
    app::AppState,
    auth::Operator,
    domain::TenantId,
    error::{ApiError, ApiResult},
    jobs::{self, RunError, Trigger},
    metering::{
        quota::{self, TenantQuota},
        report::{self, Filter, Series, UsageRow},
        RunOptions,
    },
    problem::Code,
};

/// The longest range one request may cover.
const MAX_DAYS: u64 = 400;
/// A tenant's series covers this many days when no range is given.
const DEFAULT_DAYS: u64 = 30;

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request(Code::InvalidRequest, detail)
}

fn tenant(raw: &str) -> ApiResult<TenantId> {
    TenantId::parse(raw).map_err(|e| ApiError::bad_request(Code::InvalidTenant, e.detail))
}

fn date(name: &str, v: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| bad(format!("`{name}` must be a date, YYYY-MM-DD, not `{v}`")))
}

/// `from`/`to` (inclusive): both or neither; `from` not after `to`; at most [`MAX_DAYS`].
fn range(from: Option<&str>, to: Option<&str>) -> ApiResult<Option<(NaiveDate, NaiveDate)>> {
    let (from, to) = match (from, to) {
        (None, None) => return Ok(None),
        (Some(f), Some(t)) => (date("from", f)?, date("to", t)?),
        (Some(f), None) => (date("from", f)?, Utc::now().date_naive()),
        (None, Some(_)) => return Err(bad("`to` needs a `from`")),
    };
    if from > to {
        return Err(bad("`from` is after `to`"));
    }
    if (to - from).num_days() as u64 >= MAX_DAYS {
        return Err(bad(format!("a range covers at most {MAX_DAYS} days")));
    }
    Ok(Some((from, to)))
}

fn env_filter(app: &AppState, env: Option<String>) -> ApiResult<Option<String>> {
    match env {
        Some(e) if !app.config.envs.contains(&e) => Err(ApiError::bad_request(
            Code::InvalidScope,
            format!("env `{e}` is not one of CAIRN_ENVS"),
        )),
        other => Ok(other),
    }
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v).map_err(|e| bad(e.body_text()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    tenant: Option<String>,
    env: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UsageView {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    usage: Vec<UsageRow>,
}

/// Whether the client asked for CSV (`Accept: text/csv`, before any JSON preference).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .find(|m| m == "text/csv" || m == "application/json")
        .is_some_and(|m| m == "text/csv")
}

/// `GET /admin/usage?tenant=&env=&from=&to=`: a row per tenant+env; CSV with `Accept: text/csv`.
pub async fn usage(
    State(app): State<AppState>,
    _op: Operator,
    headers: HeaderMap,
    q: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let q = query(q)?;
    let filter = Filter {
        tenant: q
            .tenant
            .as_deref()
            .map(tenant)
            .transpose()?
            .map(|t| t.to_string()),
        env: env_filter(&app, q.env)?,
        range: range(q.from.as_deref(), q.to.as_deref())?,
    };
    let rows = report::rows(&app.read, &filter, &app.config.metering.prices).await?;
    if wants_csv(&headers) {
        return Ok((
            [(
                header::CONTENT_TYPE,
                "text/csv; charset=utf-8; header=present",
            )],
            report::csv(&rows),
        )
            .into_response());
    }
    Ok(Json(UsageView {
        from: filter.range.map(|r| r.0),
        to: filter.range.map(|r| r.1),
        usage: rows,
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    env: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SeriesView {
    tenant_id: String,
    env: Option<String>,
    from: NaiveDate,
    to: NaiveDate,
    #[serde(flatten)]
    series: Series,
}

/// `GET /admin/usage/{tenant}?env=&from=&to=`: the tenant's days (default: the last 30) and
/// months, with estimated costs.
pub async fn tenant_series(
    State(app): State<AppState>,
    _op: Operator,
    Path(raw): Path<String>,
    q: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<SeriesView>> {
    let t = tenant(&raw)?;
    let q = query(q)?;
    let env = env_filter(&app, q.env)?;
    let (from, to) = match range(q.from.as_deref(), q.to.as_deref())? {
        Some(r) => r,
        None => {
            let to = Utc::now().date_naive();
            (to - Days::new(DEFAULT_DAYS - 1), to)
        }
    };
    let series = report::series(
        &app.read,
        t.as_str(),
        env.as_deref(),
        (from, to),
        &app.config.metering.prices,
    )
    .await?;
    Ok(Json(SeriesView {
        tenant_id: t.to_string(),
        env,
        from,
        to,
        series,
    }))
}

#[derive(Debug, Serialize)]
pub struct QuotaView {
    tenant_id: String,
    #[serde(flatten)]
    quota: TenantQuota,
}

/// `PUT /admin/tenants/{tenant}/quota` `{max_bytes?, max_objects?, envs?: {env: {...}}}`:
/// replaces the tenant's limits (logical bytes and live objects; `null` or absent: none).
pub async fn put_quota(
    State(app): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<TenantQuota>,
) -> ApiResult<Json<QuotaView>> {
    let t = tenant(&raw)?;
    quota::validate(&body, &app.config.envs)
        .map_err(|e| ApiError::bad_request(Code::InvalidQuota, e))?;
    quota::replace(
        &app.db,
        t.as_str(),
        &body,
        crate::domain::catalog_time(Utc::now()),
    )
    .await?;
    tracing::info!(tenant.id = %t, operator = %op.user, max_bytes = ?body.max_bytes, max_objects = ?body.max_objects, envs = body.envs.len(), "quota replaced");
    get_quota_view(&app, &t).await.map(Json)
}

async fn get_quota_view(app: &AppState, t: &TenantId) -> ApiResult<QuotaView> {
    Ok(QuotaView {
        tenant_id: t.to_string(),
        quota: quota::of(&app.read, t.as_str()).await?,
    })
}

/// `GET /admin/tenants/{tenant}/quota`.
pub async fn get_quota(
    State(app): State<AppState>,
    _op: Operator,
    Path(raw): Path<String>,
) -> ApiResult<Json<QuotaView>> {
    let t = tenant(&raw)?;
    get_quota_view(&app, &t).await.map(Json)
}

#[derive(Debug, Serialize)]
pub struct QuotasView {
    quotas: Vec<QuotaView>,
}

/// `GET /admin/quotas`: every tenant that has limits.
pub async fn quotas(State(app): State<AppState>, _op: Operator) -> ApiResult<Json<QuotasView>> {
    let all = quota::all(&app.read).await?;
    Ok(Json(QuotasView {
        quotas: all
            .into_iter()
            .map(|(tenant_id, quota)| QuotaView { tenant_id, quota })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeteringQuery {
    fix_drift: Option<String>,
}

/// `POST /admin/metering/run?fix_drift=`: samples storage, ingests new CloudFront logs and
/// reconciles the counters now; answers the run's record.
pub async fn run_metering(
    State(app): State<AppState>,
    op: Operator,
    q: Result<Query<MeteringQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let q = query(q)?;
    let opts = RunOptions {
        fix_drift: super::admin::flag("fix_drift", q.fix_drift.as_deref())?,
    };
    tracing::info!(operator = %op.user, fix_drift = opts.fix_drift, "metering run requested");
    match jobs::metering::run(&app.metering, Trigger::Api, opts, Utc::now()).await {
        Ok(run) => Ok(Json(serde_json::json!({
            "run_id": run.id,
            "status": run.status,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "report": run.report,
            "error": run.error,
        }))),
        Err(e @ RunError::Busy(_)) => Err(ApiError::conflict(Code::MeteringRunning, e.to_string())),
        Err(RunError::Db(e)) => Err(e.into()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// `GET /admin`: the operator dashboard. The page holds no data: it signs in with an operator
/// token and reads the API above.
pub async fn dashboard() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
        ],
        Html(include_str!("dashboard.html")),
    )
}
