//! The generated kinds built from JSON: `POST /artifacts/replay` (keyframes and a summary kept
//! as the client's own JSON text) and `POST /artifacts/audit` (an empty structured report).
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::post,
    Router,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};

use super::{bytes_stream, created, expires_at, lineage, visibility, ArtifactView, LineageBody};
use crate::{
    app::AppState,
    auth::Scope,
    domain::{
        artifacts::{self, NewArtifact},
        media::Kind,
        ContentType, Filename, RunId, SizeBytes,
    },
    error::{ApiError, ApiResult},
    http::{json::ApiJson, JSON_BODY_LIMIT},
    problem::Code,
    storage::UploadMethod,
};

/// Replay keyframes can be large; they are still parsed in memory, so bounded.
const REPLAY_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/artifacts/replay", post(replay))
        .layer(DefaultBodyLimit::max(REPLAY_BODY_LIMIT))
        .merge(
            Router::new()
                .route("/artifacts/audit", post(audit))
                .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
}

/// `POST /artifacts/replay` as sent: the keyframes and summary are kept as the client's own JSON
/// text (checked, never built into a tree), so a large document costs its size once.
#[derive(Deserialize)]
pub struct ReplayBody<'a> {
    run_id: String,
    #[serde(borrow)]
    keyframes: &'a RawValue,
    #[serde(borrow, default)]
    summary: Option<&'a RawValue>,
    filename: Option<String>,
    visibility: Option<String>,
    lineage: Option<LineageBody>,
    expires_at: Option<DateTime<Utc>>,
}

/// Keyframes and summaries nest at most this deep (as serde_json's own limit for trees).
const MAX_JSON_DEPTH: usize = 128;

/// How deeply arrays and objects nest in valid JSON text.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// `POST /artifacts/replay`: the keyframes (and a summary) stored as one JSON document,
/// `{"run_id":..,"keyframes":[..],"summary":{..}}`, streamed to the store from the request's
/// own bytes.
pub async fn replay(
    State(app): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    scope.require_write()?;
    crate::http::json::require_json(&headers)?;
    let body = body.map_err(crate::http::json::bytes_rejection)?;
    let b: ReplayBody<'_> = crate::http::json::parse(&body)?;
    let keyframes = b.keyframes.get();
    if !keyframes.starts_with('[') || json_depth(keyframes) > MAX_JSON_DEPTH {
        return Err(ApiError::bad_request(
            Code::InvalidKeyframes,
            format!("keyframes must be a JSON array nested at most {MAX_JSON_DEPTH} deep"),
        ));
    }
    let summary = b.summary.map(RawValue::get);
    if summary.is_some_and(|s| !s.starts_with('{') || json_depth(s) > MAX_JSON_DEPTH) {
        return Err(ApiError::bad_request(
            Code::InvalidSummary,
            format!("summary must be a JSON object nested at most {MAX_JSON_DEPTH} deep"),
        ));
    }
    let run_id = serde_json::to_string(&b.run_id).map_err(|e| ApiError::internal(e.to_string()))?;
    let pieces = vec![
        Bytes::from(format!("{{\"run_id\":{run_id},\"keyframes\":")),
        body.slice_ref(keyframes.as_bytes()),
        Bytes::from_static(b",\"summary\":"),
        match summary {
            Some(s) => body.slice_ref(s.as_bytes()),
            None => Bytes::from_static(b"{}"),
        },
        Bytes::from_static(b"}"),
    ];
    let size = pieces.iter().map(|p| p.len() as u64).sum();
    let req = json_artifact(
        &app,
        &scope,
        &b.run_id,
        Kind::Replay,
        b.filename.as_deref().unwrap_or("replay.json"),
        size,
        b.visibility.as_deref(),
        b.lineage,
        b.expires_at,
    )?;
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok));
    let a = artifacts::create_with_body(&app, &scope, req, Box::pin(stream)).await?;
    let view = ArtifactView::with_url(&app, a).await?;
    Ok(created(view, Value::Null))
}

#[derive(Deserialize)]
pub struct AuditBody {
    run_id: String,
    filename: Option<String>,
    visibility: Option<String>,
    lineage: Option<LineageBody>,
    expires_at: Option<DateTime<Utc>>,
}

/// `POST /artifacts/audit`: a structured, empty audit report that later checks fill in.
pub async fn audit(
    State(app): State<AppState>,
    scope: Scope,
    ApiJson(b): ApiJson<AuditBody>,
) -> ApiResult<Response> {
    scope.require_write()?;
    let doc = json!({
        "schema": "cairn.audit.v1",
        "run_id": b.run_id,
        "status": "empty",
        "generated_at": crate::domain::catalog_time(Utc::now()),
        "summary": { "checks": 0, "passed": 0, "failed": 0, "warnings": 0 },
        "checks": [],
        "findings": [],
    });
    let bytes = serde_json::to_vec(&doc).map_err(|e| ApiError::internal(e.to_string()))?;
    let req = json_artifact(
        &app,
        &scope,
        &b.run_id,
        Kind::Audit,
        b.filename.as_deref().unwrap_or("audit.json"),
        bytes.len() as u64,
        b.visibility.as_deref(),
        b.lineage,
        b.expires_at,
    )?;
    let a = artifacts::create_with_body(&app, &scope, req, bytes_stream(bytes)).await?;
    let view = ArtifactView::with_url(&app, a).await?;
    Ok(created(view, Value::Null))
}

#[allow(clippy::too_many_arguments)]
fn json_artifact(
    app: &AppState,
    scope: &Scope,
    run_id: &str,
    kind: Kind,
    filename: &str,
    size: u64,
    vis: Option<&str>,
    lin: Option<LineageBody>,
    exp: Option<DateTime<Utc>>,
) -> ApiResult<NewArtifact> {
    if size > app.config.max_upload_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::SizeTooLarge,
            "the document exceeds CAIRN_MAX_UPLOAD_BYTES",
        ));
    }
    Ok(NewArtifact {
        run_id: RunId::parse(run_id)?,
        kind,
        filename: Filename::parse(filename)?,
        content_type: ContentType::parse("application/json")?,
        size: SizeBytes::new_unchecked(size),
        sha256: None,
        visibility: visibility(vis)?,
        lineage: lineage(lin, scope)?,
        expires_at: expires_at(exp),
        method: UploadMethod::Put,
    })
}
