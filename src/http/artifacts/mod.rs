//! `/artifacts/*` and `/runs/{run_id}/artifacts` (DESIGN §5), one file per action, each with its
//! own `router()`: [`create`] (create, upload, complete), [`preview`] and [`documents`] (the
//! generated kinds sent whole), [`read`] (metadata, bytes, lineage), [`runs`] (the manifest and
//! CDN cookies) and [`manage`] (delete, legal hold). Handlers parse requests into domain values
//! and call `domain::artifacts`; what they share (the view, lineage and body helpers) is here.
use axum::{
    body::{Body, Bytes},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json, Router,
};
use chrono::{DateTime, Utc};
use entity::artifact;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::Scope,
    domain::{
        artifacts::{self, Lineage},
        media::Visibility,
    },
    error::{ApiError, ApiResult},
    problem::Code,
    storage::BodyStream,
};

pub mod create;
pub mod documents;
pub mod manage;
pub mod preview;
pub mod read;
pub mod runs;

/// Every artifact route, with the body limit each needs.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(create::router())
        .merge(preview::router())
        .merge(documents::router())
        .merge(read::router())
        .merge(runs::router())
        .merge(manage::router())
}

/// The longest `?wait=` a client may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

/// An Artifact as the API shows it.
#[derive(Debug, Serialize)]
pub struct ArtifactView {
    pub artifact_id: Uuid,
    pub tenant_id: String,
    pub env: String,
    pub run_id: String,
    pub kind: String,
    pub visibility: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: Option<String>,
    pub status: String,
    pub legal_hold: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub lineage: LineageView,
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An artifact's lineage as the API shows it (without `run_id`, which the view has): its keys
/// in the order a JSON object of them has always been written in (alphabetical).
#[derive(Debug, Serialize)]
pub struct LineageView {
    pub actor_id: Option<String>,
    pub canvas_id: Option<String>,
    pub correlation_id: Option<String>,
    pub derived_from: Value,
    pub project_id: Option<String>,
    pub rev: Option<i64>,
    pub workspace_id: Option<String>,
}

impl ArtifactView {
    /// The API view of `a` with its delivery URL.
    pub fn new(mut a: artifact::Model, url: Option<String>) -> Self {
        let tenant_id = std::mem::take(&mut a.tenant_id);
        let env = std::mem::take(&mut a.env);
        let run_id = std::mem::take(&mut a.run_id);
        Self::of(artifacts::Listed::from(a), tenant_id, env, run_id, url)
    }

    /// The view of an artifact of `run` in the caller's scope as its manifest lists it.
    pub fn listed(a: artifacts::Listed, scope: &Scope, run: &str, url: Option<String>) -> Self {
        Self::of(
            a,
            scope.tenant.to_string(),
            scope.env.to_string(),
            run.to_owned(),
            url,
        )
    }

    fn of(
        a: artifacts::Listed,
        tenant_id: String,
        env: String,
        run_id: String,
        url: Option<String>,
    ) -> Self {
        Self {
            artifact_id: a.artifact_id,
            tenant_id,
            env,
            run_id,
            kind: a.kind,
            visibility: a.visibility,
            filename: a.filename,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            status: a.status,
            legal_hold: a.legal_hold,
            expires_at: a.expires_at,
            lineage: LineageView {
                actor_id: a.actor_id,
                canvas_id: a.canvas_id,
                correlation_id: a.correlation_id,
                derived_from: a.derived_from,
                project_id: a.project_id,
                rev: a.rev,
                workspace_id: a.workspace_id,
            },
            uri: a.uri,
            url,
            created_at: a.created_at,
        }
    }

    pub(super) async fn with_url(app: &AppState, a: artifact::Model) -> ApiResult<Self> {
        let url = artifacts::delivery_url(app, &a).await?;
        Ok(Self::new(a, url))
    }
}

/// Ids that do not parse cannot exist: the same 404 as for any unknown id.
pub(super) fn artifact_id(s: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| ApiError::not_found())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LineageBody {
    workspace_id: Option<String>,
    project_id: Option<String>,
    canvas_id: Option<String>,
    rev: Option<Value>,
    correlation_id: Option<String>,
    actor_id: Option<String>,
    derived_from: Option<Vec<Value>>,
}

const MAX_DERIVED_FROM: usize = 64;

/// The lineage of a new artifact; `actor_id` defaults to the caller (the token's `sub`) when the
/// request names none and the `sub` is a valid lineage value.
pub(super) fn lineage(body: Option<LineageBody>, scope: &Scope) -> ApiResult<Lineage> {
    let mut b = body.unwrap_or_default();
    if b.actor_id.is_none() {
        let sub = &scope.user;
        if !sub.is_empty() && sub.len() <= 255 && !sub.chars().any(char::is_control) {
            b.actor_id = Some(sub.clone());
        }
    }
    let bad = |what: &str| ApiError::bad_request(Code::InvalidLineage, format!("lineage.{what}"));
    let text = |v: Option<String>, name: &str| -> ApiResult<Option<String>> {
        match v {
            Some(s) if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) => {
                Err(bad(&format!(
                    "{name} must be 1–255 bytes without control characters"
                )))
            }
            other => Ok(other),
        }
    };
    let rev = match b.rev {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|r| *r >= 0)
                .ok_or_else(|| bad("rev must be a non-negative integer"))?,
        ),
    };
    let ids = b.derived_from.unwrap_or_default();
    if ids.len() > MAX_DERIVED_FROM {
        return Err(bad(&format!(
            "derived_from lists at most {MAX_DERIVED_FROM} ids"
        )));
    }
    let mut derived_from = Vec::with_capacity(ids.len());
    for v in ids {
        let id = v
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| bad("derived_from must list raw asset or artifact ids"))?;
        if !derived_from.contains(&id) {
            derived_from.push(id);
        }
    }
    Ok(Lineage {
        workspace_id: text(b.workspace_id, "workspace_id")?,
        project_id: text(b.project_id, "project_id")?,
        canvas_id: text(b.canvas_id, "canvas_id")?,
        rev,
        correlation_id: text(b.correlation_id, "correlation_id")?,
        actor_id: text(b.actor_id, "actor_id")?,
        derived_from,
    })
}

pub(super) fn visibility(v: Option<&str>) -> ApiResult<Visibility> {
    Ok(v.map(Visibility::parse)
        .transpose()?
        .unwrap_or(Visibility::Private))
}

pub(super) fn expires_at(v: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    v.map(crate::domain::catalog_time)
}

pub(super) fn created(view: ArtifactView, upload: Value) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({ "artifact": view, "upload": upload })),
    )
        .into_response()
}

/// The whole body, refused past `limit` (413) or when it arrives too slowly (408).
pub(super) async fn read_bounded(body: Body, limit: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if crate::storage::is_timeout(&e) {
            ApiError::body_timeout(e.to_string())
        } else {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge,
                format!("the request body is larger than {limit} bytes"),
            )
        }
    })
}

/// `Content-Length` when the request sends one (a chunked body has none).
pub(super) fn declared_length(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ApiError::bad_request(Code::InvalidRequest, "bad Content-Length"))
        })
        .transpose()
}

pub(super) fn body_stream(body: Body) -> BodyStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

pub(super) fn bytes_stream(bytes: Vec<u8>) -> BodyStream {
    Box::pin(futures_util::stream::once(
        async move { Ok(Bytes::from(bytes)) },
    ))
}
