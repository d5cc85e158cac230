//! `/artifacts/*` and `/runs/{run_id}/artifacts` (DESIGN §5). Handlers parse requests into domain
//! values and call `domain::artifacts`.
use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::{rejection::BytesRejection, Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use entity::artifact;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, value::RawValue, Value};
use uuid::Uuid;

use super::{json::ApiJson, raw::RawAssetView};
use crate::{
    app::AppState,
    auth::Scope,
    domain::{
        artifacts::{self, Lineage, LineageNode, NewArtifact},
        media::{self, Kind, Visibility},
        ContentType, Filename, RunId, Sha256, SizeBytes,
    },
    error::{ApiError, ApiResult},
    problem::Code,
    storage::{BodyStream, UploadMethod},
};

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
    pub lineage: Value,
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl ArtifactView {
    /// The API view of `a` with its delivery URL.
    pub fn new(a: artifact::Model, url: Option<String>) -> Self {
        let mut lineage = artifacts::lineage_json(&a);
        if let Some(o) = lineage.as_object_mut() {
            o.remove("run_id");
        }
        Self {
            artifact_id: a.artifact_id,
            tenant_id: a.tenant_id,
            env: a.env,
            run_id: a.run_id,
            kind: a.kind,
            visibility: a.visibility,
            filename: a.filename,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            status: a.status,
            legal_hold: a.legal_hold,
            expires_at: a.expires_at,
            lineage,
            uri: a.uri,
            url,
            created_at: a.created_at,
        }
    }

    async fn with_url(app: &AppState, a: artifact::Model) -> ApiResult<Self> {
        let url = artifacts::delivery_url(app, &a).await?;
        Ok(Self::new(a, url))
    }
}

/// Ids that do not parse cannot exist: the same 404 as for any unknown id.
fn artifact_id(s: &str) -> ApiResult<Uuid> {
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
fn lineage(body: Option<LineageBody>, scope: &Scope) -> ApiResult<Lineage> {
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

fn visibility(v: Option<&str>) -> ApiResult<Visibility> {
    Ok(v.map(Visibility::parse)
        .transpose()?
        .unwrap_or(Visibility::Private))
}

fn expires_at(v: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    v.map(crate::domain::catalog_time)
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

fn created(view: ArtifactView, upload: Value) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({ "artifact": view, "upload": upload })),
    )
        .into_response()
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

/// The query of a binary preview: its facts and lineage (`derived_from` may repeat). Any other
/// parameter, or one given twice, is refused rather than dropped.
#[derive(Default)]
struct PreviewQuery {
    run_id: Option<String>,
    filename: Option<String>,
    visibility: Option<String>,
    sha256: Option<String>,
    expires_at: Option<String>,
    lineage: LineageBody,
}

impl PreviewQuery {
    fn parse(pairs: Vec<(String, String)>) -> ApiResult<Self> {
        let bad = |why: String| ApiError::bad_request(Code::InvalidRequest, why);
        let mut q = Self::default();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in pairs {
            if name != "derived_from" && !seen.insert(name.clone()) {
                return Err(bad(format!("the query gives `{name}` twice")));
            }
            let l = &mut q.lineage;
            match name.as_str() {
                "run_id" => q.run_id = Some(value),
                "filename" => q.filename = Some(value),
                "visibility" => q.visibility = Some(value),
                "sha256" => q.sha256 = Some(value),
                "expires_at" => q.expires_at = Some(value),
                "workspace_id" => l.workspace_id = Some(value),
                "project_id" => l.project_id = Some(value),
                "canvas_id" => l.canvas_id = Some(value),
                "correlation_id" => l.correlation_id = Some(value),
                "actor_id" => l.actor_id = Some(value),
                // Checked with the rest of the lineage: a non-negative integer.
                "rev" => {
                    l.rev = Some(
                        value
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or(Value::String(value)),
                    )
                }
                "derived_from" => l
                    .derived_from
                    .get_or_insert_with(Vec::new)
                    .push(Value::String(value)),
                other => {
                    return Err(bad(format!(
                        "unknown query parameter `{other}`; a binary preview takes run_id, \
                         filename, visibility, sha256, expires_at and the lineage fields"
                    )))
                }
            }
        }
        Ok(q)
    }

    fn expires_at(&self) -> ApiResult<Option<DateTime<Utc>>> {
        self.expires_at
            .as_deref()
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.to_utc())
                    .map_err(|_| {
                        ApiError::bad_request(
                            Code::InvalidExpiresAt,
                            "expires_at must be an RFC 3339 time",
                        )
                    })
            })
            .transpose()
    }
}

/// The largest binary preview sent without `Content-Length` (chunked): it is read whole
/// before it is stored, so it is bounded well below `CAIRN_MAX_UPLOAD_BYTES`.
pub const MAX_CHUNKED_PREVIEW_BYTES: usize = 16 * 1024 * 1024;

#[derive(Deserialize)]
pub struct RenderRefBody {
    run_id: String,
    uri: String,
    filename: Option<String>,
    visibility: Option<String>,
    lineage: Option<LineageBody>,
    expires_at: Option<DateTime<Utc>>,
}

/// `POST /artifacts/preview`: the image bytes as the body (with their `Content-Type`, and
/// `?run_id=..&filename=..` plus optional `visibility`, `sha256`, `expires_at` and lineage
/// fields), or JSON `{run_id, uri}` naming a render elsewhere.
pub async fn preview(
    State(app): State<AppState>,
    scope: Scope,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    scope.require_write()?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::UnsupportedMediaType,
                "send the image with its Content-Type, or JSON {run_id, uri}",
            )
        })?;
    let ct = media::canonical(ContentType::parse(ct)?);
    if ct.essence() == "application/json" {
        if let Some((name, _)) = pairs.first() {
            return Err(ApiError::bad_request(
                Code::InvalidRequest,
                format!("unknown query parameter `{name}`: a render reference is all JSON"),
            ));
        }
        return render_ref_preview(app, scope, body).await;
    }
    let q = PreviewQuery::parse(pairs)?;
    let missing = |name: &str| {
        ApiError::bad_request(
            Code::InvalidRequest,
            format!("a binary preview needs ?{name}="),
        )
    };
    let run_id = RunId::parse(q.run_id.as_deref().ok_or_else(|| missing("run_id"))?)?;
    let filename = Filename::parse(q.filename.as_deref().ok_or_else(|| missing("filename"))?)?;
    let expires = q.expires_at()?;
    let (size, stream) = match declared_length(&headers)? {
        Some(n) if n > app.config.max_upload_bytes => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::SizeTooLarge,
                format!(
                    "the body of {n} bytes exceeds the limit of {} bytes",
                    app.config.max_upload_bytes
                ),
            ))
        }
        Some(n) => (n, body_stream(body)),
        // Chunked: read whole (bounded), then stored like any other.
        None => {
            let limit = MAX_CHUNKED_PREVIEW_BYTES.min(app.config.max_upload_bytes as usize);
            let bytes = read_bounded(body, limit).await?;
            (bytes.len() as u64, bytes_stream(bytes.to_vec()))
        }
    };
    let req = NewArtifact {
        run_id,
        kind: Kind::Preview,
        filename,
        content_type: ct,
        size: SizeBytes::new_unchecked(size),
        sha256: q.sha256.as_deref().map(Sha256::parse).transpose()?,
        visibility: visibility(q.visibility.as_deref())?,
        lineage: lineage(Some(q.lineage), &scope)?,
        expires_at: expires_at(expires),
        method: UploadMethod::Put,
    };
    let a = artifacts::create_with_body(&app, &scope, req, stream).await?;
    let view = ArtifactView::with_url(&app, a).await?;
    Ok(created(view, Value::Null))
}

/// A preview that names a render elsewhere (`{run_id, uri, ...}`): its filename is the URI's
/// last path segment and its type the image type that segment's extension says, when they can
/// be told (else `preview` and `text/uri-list`), unless the request names a filename.
async fn render_ref_preview(app: AppState, scope: Scope, body: Body) -> ApiResult<Response> {
    let bytes = read_bounded(body, super::JSON_BODY_LIMIT).await?;
    let b: RenderRefBody = super::json::parse(&bytes)?;
    let uri = render_ref(b.uri)?;
    let from_uri = uri_filename(&uri);
    let filename = match (&b.filename, &from_uri) {
        (Some(given), _) => Filename::parse(given)?,
        (None, Some(derived)) => derived.clone(),
        (None, None) => Filename::parse("preview")?,
    };
    let content_type = media::image_type_of(filename.as_str())
        .or_else(|| {
            from_uri
                .as_ref()
                .and_then(|f| media::image_type_of(f.as_str()))
        })
        .unwrap_or("text/uri-list");
    let req = NewArtifact {
        run_id: RunId::parse(&b.run_id)?,
        kind: Kind::Preview,
        filename,
        content_type: ContentType::parse(content_type)?,
        size: SizeBytes::new_unchecked(0),
        sha256: None,
        visibility: visibility(b.visibility.as_deref())?,
        lineage: lineage(b.lineage, &scope)?,
        expires_at: expires_at(b.expires_at),
        method: UploadMethod::Put,
    };
    let a = artifacts::create_render_ref(&app, &scope, req, uri).await?;
    let view = ArtifactView::with_url(&app, a).await?;
    Ok(created(view, Value::Null))
}

/// The last path segment of a render URI, percent-decoded, when it is a valid filename.
fn uri_filename(uri: &str) -> Option<Filename> {
    let path = uri.split(['?', '#']).next()?;
    let (_, after_scheme) = path.split_once("://")?;
    let (_, path) = after_scheme.split_once('/')?;
    let last = path.rsplit('/').next()?;
    let decoded = percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .ok()?;
    Filename::parse(&decoded).ok()
}

/// The whole body, refused past `limit` (413) or when it arrives too slowly (408).
async fn read_bounded(body: Body, limit: usize) -> ApiResult<Bytes> {
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

/// A render reference: an `https://`, `http://` or `s3://` URI of at most 2048 bytes.
fn render_ref(uri: String) -> ApiResult<String> {
    let ok = uri.len() <= 2048
        && ["https://", "http://", "s3://"]
            .iter()
            .any(|p| uri.starts_with(p) && uri.len() > p.len())
        && !uri.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(uri)
    } else {
        Err(ApiError::bad_request(
            Code::InvalidUri,
            "uri must be an https://, http:// or s3:// URI of at most 2048 bytes",
        ))
    }
}

/// `Content-Length` when the request sends one (a chunked body has none).
fn declared_length(headers: &HeaderMap) -> ApiResult<Option<u64>> {
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

fn body_stream(body: Body) -> BodyStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

fn bytes_stream(bytes: Vec<u8>) -> BodyStream {
    Box::pin(futures_util::stream::once(
        async move { Ok(Bytes::from(bytes)) },
    ))
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
    super::json::require_json(&headers)?;
    let body = body.map_err(super::json::bytes_rejection)?;
    let b: ReplayBody<'_> = super::json::parse(&body)?;
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

#[derive(Deserialize)]
pub struct WaitQuery {
    wait: Option<String>,
    expires_in: Option<String>,
    download: Option<String>,
}

/// `?download=` of the routes that deliver bytes.
#[derive(Deserialize)]
pub struct DownloadQuery {
    download: Option<String>,
}

/// `?download=true` asks for `Content-Disposition: attachment` (save, not view).
fn download_flag(v: Option<&str>) -> ApiResult<bool> {
    match v {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            Code::InvalidDownload,
            "download must be true or false",
        )),
    }
}

/// `?expires_in=` of the reads that hand out URLs.
#[derive(Deserialize)]
pub struct TtlQuery {
    expires_in: Option<String>,
}

/// The lifetime `?expires_in=` asks for (whole seconds, 1 to 7 days), as a URL lifetime.
fn ttl_of(app: &AppState, expires_in: Option<&str>) -> ApiResult<chrono::Duration> {
    let secs = expires_in
        .map(|v| super::expires_in(v.parse::<u64>().ok()))
        .transpose()?;
    Ok(artifacts::url_ttl(app, secs))
}

pub async fn get(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Json<ArtifactView>> {
    let id = artifact_id(&id)?;
    let wait = match q.wait.as_deref() {
        None => 0,
        Some(w) => w
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_SECS)
            .ok_or_else(|| {
                ApiError::bad_request(
                    Code::InvalidWait,
                    format!("wait must be an integer from 0 to {MAX_WAIT_SECS} seconds"),
                )
            })?,
    };
    let ttl = ttl_of(&app, q.expires_in.as_deref())?;
    let attachment = download_flag(q.download.as_deref())?;
    let a = if wait == 0 {
        artifacts::get(&app, &scope, id).await?
    } else {
        artifacts::wait(&app, &scope, id, Duration::from_secs(wait)).await?
    };
    let url = artifacts::read_url(&app, &a, ttl, attachment).await?;
    Ok(Json(ArtifactView::new(a, url)))
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
    parts: Option<Vec<super::raw::PartBody>>,
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
    let body = body.map_err(super::json::bytes_rejection)?;
    let parts = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let b: CompleteBody = super::json::parse(&body)?;
        b.parts.map(super::raw::parts).transpose()?
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

/// The bytes: streamed by Cairn on the local backend (with `Range`), else a 302 to the delivery
/// URL. Shown inline where the type allows, saved with `?download=true`.
pub async fn get_content(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let attachment = download_flag(q.download.as_deref())?;
    let a = artifacts::get(&app, &scope, artifact_id(&id)?).await?;
    if a.status != artifact::STATUS_AVAILABLE {
        return Err(ApiError::conflict(
            Code::NotAvailable,
            format!("the artifact is {}", a.status),
        ));
    }
    if let (Some(local), None) = (app.local.as_deref(), &a.render_ref) {
        let key = artifacts::object_key(&app, &a).await?;
        return super::objects::serve(
            local,
            &key,
            // Cairn serves it, sandboxed when active: inline unless a download was asked for.
            Some(crate::storage::content_disposition(
                &a.filename,
                crate::storage::shows_inline(&a.content_type, true, attachment),
            )),
            "private, no-cache".into(),
            &headers,
        )
        .await
        .map(|res| super::served::metered(&app, &key, res));
    }
    let url = artifacts::download_url(&app, &a, attachment)
        .await?
        .ok_or_else(|| ApiError::internal("an available artifact without a URL"))?;
    // DESIGN §5: a 302 (Found), which every client follows with a GET.
    Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
}

#[derive(Serialize)]
pub struct Manifest {
    run_id: String,
    artifacts: Vec<ArtifactView>,
}

/// `GET /runs/{run_id}/artifacts`: the player's manifest, every URL ready to fetch.
pub async fn list_run(
    State(app): State<AppState>,
    scope: Scope,
    Path(run_id): Path<String>,
    Query(q): Query<TtlQuery>,
) -> ApiResult<Json<Manifest>> {
    let run = RunId::parse(&run_id)?;
    let ttl = ttl_of(&app, q.expires_in.as_deref())?;
    let views = artifacts::manifest(&app, &scope, &run, ttl)
        .await?
        .into_iter()
        .map(|(a, url)| ArtifactView::new(a, url))
        .collect();
    Ok(Json(Manifest {
        run_id: run.to_string(),
        artifacts: views,
    }))
}

/// `POST /runs/{run_id}/cdn-cookies`: CloudFront signed cookies for every private object of the
/// run (the manifest's policy), as `Set-Cookie` headers and in the body for non-browser players.
pub async fn cdn_cookies(
    State(app): State<AppState>,
    scope: Scope,
    Path(run_id): Path<String>,
    Query(q): Query<TtlQuery>,
) -> ApiResult<Response> {
    let run = RunId::parse(&run_id)?;
    let ttl = ttl_of(&app, q.expires_in.as_deref())?;
    let g = artifacts::run_grant(&app, &scope, &run, ttl).await?;
    let secure = app.cdn.base().starts_with("https://");
    let max_age = (g.expires_at - Utc::now()).num_seconds().max(0);
    let mut attrs = format!("Path={}; Max-Age={max_age}", g.path);
    if let Some(d) = app.cdn.cookie_domain() {
        attrs.push_str(&format!("; Domain={d}"));
    }
    // The player is usually on another site than the CDN: cross-site cookies need
    // `SameSite=None`, which browsers accept only with `Secure`.
    attrs.push_str(if secure {
        "; Secure; HttpOnly; SameSite=None"
    } else {
        "; HttpOnly; SameSite=Lax"
    });
    let cookies = g.grant.signed.cookies();
    let mut res = Json(json!({
        "run_id": run.to_string(),
        "resource": g.grant.signed.policy.resource,
        "expires_at": g.expires_at,
        "path": g.path,
        "cookies": cookies.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
    }))
    .into_response();
    for (name, value) in cookies {
        let v = header::HeaderValue::from_str(&format!("{name}={value}; {attrs}"))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

pub async fn delete(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    scope.require_write()?;
    artifacts::delete(&app, &scope, artifact_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct HoldBody {
    hold: bool,
}

pub async fn legal_hold(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<HoldBody>,
) -> ApiResult<Json<ArtifactView>> {
    scope.require_write()?;
    let a = artifacts::set_legal_hold(&app, &scope, artifact_id(&id)?, b.hold).await?;
    Ok(Json(ArtifactView::with_url(&app, a).await?))
}

pub async fn lineage_chain(
    State(app): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = artifacts::get(&app, &scope, artifact_id(&id)?).await?;
    let chain = artifacts::lineage_chain(&app, &scope, &a).await?;
    let view = ArtifactView::new(a, None);
    Ok(Json(
        json!({ "artifact": view, "derived_from": nodes(chain) }),
    ))
}

fn nodes(chain: Vec<LineageNode>) -> Vec<Value> {
    chain
        .into_iter()
        .map(|n| match n {
            LineageNode::Artifact(a, parents) => json!({
                "type": "artifact",
                "artifact": ArtifactView::new(*a, None),
                "derived_from": nodes(parents),
            }),
            LineageNode::RawAsset(r) => json!({
                "type": "raw_asset",
                "raw_asset": RawAssetView::from(*r),
            }),
            LineageNode::Missing(id) => json!({ "type": "unavailable", "id": id }),
        })
        .collect()
}
