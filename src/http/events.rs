//! Reading the dataset event log (DESIGN §5): `GET /events` (the scope's log, filtered by
//! `subject`, `kind`, `from`, `to`), `GET /artifacts/{id}/events` and
//! `GET /storage/raw/{id}/events` (one item's history, kept after it is purged). Newest first,
//! `limit` events a page (100, at most 1,000), `cursor` continuing from the previous page's
//! `next_cursor`. Any member of the tenant may read; ids of other tenants or envs are 404.
use axum::{
    extract::{Path, Query, State},
    Json,
};
use chrono::{DateTime, Utc};
use entity::dataset_event;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::Scope,
    error::{ApiError, ApiResult},
    events::read::{self, Filter, Kinds},
    problem::Code,
};

/// One event as the API shows it.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject_id: Uuid,
    pub tenant_id: String,
    pub env: String,
    pub user_id: String,
    pub trace_id: String,
    pub lineage: Value,
    pub pii_flags: Value,
    pub train_ok: Option<bool>,
    pub detail: Value,
    pub at: DateTime<Utc>,
}

impl From<dataset_event::Model> for EventView {
    fn from(e: dataset_event::Model) -> Self {
        Self {
            id: e.id,
            kind: e.event_type,
            subject_id: e.subject_id,
            tenant_id: e.tenant_id,
            env: e.env,
            user_id: e.user_id,
            trace_id: e.trace_id,
            lineage: e.lineage,
            pii_flags: e.pii_flags,
            train_ok: e.train_ok,
            detail: e.detail,
            at: e.at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<Uuid>,
}

fn invalid(detail: String) -> ApiError {
    ApiError::bad_request(Code::InvalidQuery, detail)
}

/// The filter and page size of a query; `subject` only where `with_subject`. Unknown or
/// repeated parameters are refused.
fn parse(pairs: Vec<(String, String)>, with_subject: bool) -> ApiResult<(Filter, u64)> {
    let mut f = Filter::default();
    let mut limit = read::DEFAULT_PAGE;
    let mut seen = std::collections::HashSet::new();
    let time = |name: &str, v: &str| {
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.to_utc())
            .map_err(|_| invalid(format!("{name} must be an RFC 3339 time")))
    };
    for (name, value) in pairs {
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("the query gives `{name}` twice")));
        }
        match name.as_str() {
            "subject" if with_subject => {
                f.subject =
                    Some(Uuid::parse_str(&value).map_err(|_| {
                        invalid("subject must be an artifact or raw asset id".into())
                    })?)
            }
            "kind" => {
                f.kinds = Some(Kinds::parse(&value).ok_or_else(|| {
                    invalid(
                        "kind must be an event type (artifact.created) or a family (artifact)"
                            .into(),
                    )
                })?)
            }
            "from" => f.from = Some(time("from", &value)?),
            "to" => f.to = Some(time("to", &value)?),
            "cursor" => {
                f.cursor = Some(Uuid::parse_str(&value).map_err(|_| {
                    ApiError::bad_request(
                        Code::InvalidCursor,
                        "cursor must be a next_cursor this API gave",
                    )
                })?)
            }
            "limit" => {
                limit = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=read::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "limit must be an integer from 1 to {}",
                            read::MAX_PAGE
                        ))
                    })?
            }
            other => return Err(invalid(format!("unknown query parameter `{other}`"))),
        }
    }
    if let (Some(from), Some(to)) = (f.from, f.to) {
        if from >= to {
            return Err(invalid("from must be before to".into()));
        }
    }
    Ok((f, limit))
}

async fn answer(
    app: &AppState,
    scope: &Scope,
    f: Filter,
    limit: u64,
) -> ApiResult<Json<EventPage>> {
    let (events, next_cursor) = read::page(&app.read, scope, &f, limit).await?;
    Ok(Json(EventPage {
        events: events.into_iter().map(EventView::from).collect(),
        next_cursor,
    }))
}

/// `GET /events`: the scope's log.
pub async fn list(
    State(app): State<AppState>,
    scope: Scope,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<EventPage>> {
    let (f, limit) = parse(pairs, true)?;
    answer(&app, &scope, f, limit).await
}

/// One item's events, when the scope's log knows the item as one of `family`.
async fn of_item(
    app: AppState,
    scope: Scope,
    id: &str,
    family: &str,
    pairs: Vec<(String, String)>,
) -> ApiResult<Json<EventPage>> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    let (mut f, limit) = parse(pairs, false)?;
    if !read::knows(&app.read, &scope, id, family).await? {
        return Err(ApiError::not_found());
    }
    f.subject = Some(id);
    answer(&app, &scope, f, limit).await
}

/// `GET /artifacts/{id}/events`.
pub async fn of_artifact(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<EventPage>> {
    of_item(app, scope, &id, "artifact", pairs).await
}

/// `GET /storage/raw/{id}/events` (and `/nexus/raw/...`).
pub async fn of_raw_asset(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<EventPage>> {
    of_item(app, scope, &id, "raw", pairs).await
}
