//! Creating an artifact: `POST /artifacts` (metadata first, then the bytes), `PUT
//! /artifacts/{id}/content` (the bytes streamed through Cairn) and `POST /artifacts/{id}/complete`
//! (after a presigned upload).
use axum::{
    body::{Body, Bytes},
    extract::{rejection::BytesRejection, DefaultBodyLimit, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{post, put},
    Json, Router,
};
use chrono::{DateTime, Utc};
use entity::artifact;
use serde::Deserialize;
use serde_json::Value;

use super::{
    artifact_id, body_stream, created, expires_at, lineage, visibility, ArtifactView, LineageBody,
};
use crate::{
    app::AppState,
    auth::Scope,
    domain::{
        artifacts::{self, NewArtifact},
        media::{self, Kind},
        ContentType, Filename, RunId, Sha256, SizeBytes,
    },
    error::{ApiError, ApiResult},
    http::{json::ApiJson, JSON_BODY_LIMIT},
    problem::Code,
    storage::UploadMethod,
};

pub fn router() -> Router<AppState> {
    let json = Router::new()
        .route("/artifacts", post(create))
        .route("/artifacts/{id}/complete", post(complete))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    // The bytes are streamed into the store, which checks their declared size.
    let streamed = Router::new()
        .route("/artifacts/{id}/content", put(put_content))
        .layer(DefaultBodyLimit::disable());
    json.merge(streamed)
}

#[derive(Deserialize)]
pub struct CreateBody {
    run_id: String,
    kind: String,
    filename: String,
    content_type: String,
    size_bytes: Value,
    sha256: Option<String>,
    visibility: Option<String>,
    lineage: Option<LineageBody>,
    expires_at: Option<DateTime<Utc>>,
    method: Option<String>,
}

pub async fn create(
    State(app): State<AppState>,
    scope: Scope,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    scope.require_write()?;
    let req = NewArtifact {
        run_id: RunId::parse(&b.run_id)?,
        kind: Kind::parse(&b.kind)?,
        filename: Filename::parse(&b.filename)?,
        content_type: media::canonical(ContentType::parse(&b.content_type)?),
        size: SizeBytes::parse(&b.size_bytes, app.config.max_upload_bytes)?,
        sha256: b.sha256.as_deref().map(Sha256::parse).transpose()?,
        visibility: visibility(b.visibility.as_deref())?,
        lineage: lineage(b.lineage, &scope)?,
        expires_at: expires_at(b.expires_at),
        method: match b.method.as_deref() {
            None | Some("PUT") => UploadMethod::Put,
            Some("POST") => UploadMethod::Post,
            Some(_) => {
                return Err(ApiError::bad_request(
                    Code::InvalidMethod,
                    "method must be PUT or POST",
                ))
            }
        },
    };
    let (a, upload) = artifacts::create(&app, &scope, req).await?;
    let upload = serde_json::to_value(&upload).map_err(|e| ApiError::internal(e.to_string()))?;
    let view = ArtifactView::with_url(&app, a).await?;
    Ok(created(view, upload))
}

pub async fn put_content(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ArtifactView>> {
    scope.require_write()?;
    let id = artifact_id(&id)?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let a = artifacts::upload_content(&app, &scope, id, body_stream(body), length).await?;
    Ok(Json(ArtifactView::with_url(&app, a).await?))
}

#[derive(Deserialize)]
pub struct CompleteBody {
    parts: Option<Vec<crate::http::raw::PartBody>>,
}

/// `POST /artifacts/{id}/complete`, with an optional JSON body `{parts: [{part_number, etag}]}`.
pub async fn complete(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    scope.require_write()?;
    let id = artifact_id(&id)?;
    let body = body.map_err(crate::http::json::bytes_rejection)?;
    let parts = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let b: CompleteBody = crate::http::json::parse(&body)?;
        b.parts.map(crate::http::raw::parts).transpose()?
    };
    let a = artifacts::complete(&app, &scope, id, parts).await?;
    // Verification of a multipart upload continues in the background: 202 until it is done.
    let status = if a.status == artifact::STATUS_UPLOADING {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ArtifactView::with_url(&app, a).await?)).into_response())
}
