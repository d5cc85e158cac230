//! `POST /artifacts/preview`: a preview image sent whole (binary body with its facts in the
//! query, chunked bodies bounded), or a reference to a render stored elsewhere.
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::Response,
    routing::post,
    Router,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{
    body_stream, bytes_stream, created, declared_length, expires_at, lineage, read_bounded,
    visibility, ArtifactView, LineageBody,
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
    problem::Code,
    storage::UploadMethod,
};

pub fn router() -> Router<AppState> {
    // A binary body is streamed into the store with its declared size checked there.
    Router::new()
        .route("/artifacts/preview", post(preview))
        .layer(DefaultBodyLimit::disable())
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
    let bytes = read_bounded(body, crate::http::JSON_BODY_LIMIT).await?;
    let b: RenderRefBody = crate::http::json::parse(&bytes)?;
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
