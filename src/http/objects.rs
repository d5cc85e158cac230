//! The local backend's object endpoint: `PUT /o/<key>` and `POST /o` (browser form) upload,
//! `GET /o/<key>` downloads. Every request carries a signed, expiring grant from `LocalStore`;
//! the bearer token plays no part here.
use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::{FromRequest, Multipart, Path, Query, Request, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::range::{self, RangeOutcome};
use crate::{
    app::AppState,
    domain::{ContentType, ObjectKey, Sha256},
    error::{ApiError, ApiResult},
    problem::Code,
    storage::{
        content_disposition,
        local::{Contents, LocalStore, Meta, PutGrant, UrlError, WriteError},
    },
};

type Params = Query<HashMap<String, String>>;

fn local(app: &AppState) -> ApiResult<&LocalStore> {
    app.local.as_deref().ok_or_else(ApiError::not_found)
}

fn denied(e: UrlError) -> ApiError {
    match e {
        UrlError::Expired => ApiError::forbidden_code(Code::UrlExpired, "the URL has expired"),
        UrlError::BadSignature => ApiError::forbidden_code(
            Code::SignatureInvalid,
            "the URL's signature does not match the request",
        ),
    }
}

fn bad_grant() -> ApiError {
    denied(UrlError::BadSignature)
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> ApiResult<&'a str> {
    q.get(name).map(String::as_str).ok_or_else(bad_grant)
}

fn exp(q: &HashMap<String, String>) -> ApiResult<i64> {
    param(q, "exp")?.parse().map_err(|_| bad_grant())
}

fn write_error(e: WriteError) -> ApiError {
    match e {
        WriteError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::PayloadTooLarge,
            e.to_string(),
        ),
        WriteError::SizeMismatch { .. } => ApiError::bad_request(Code::SizeMismatch, e.to_string()),
        WriteError::ChecksumMismatch => {
            ApiError::bad_request(Code::ChecksumMismatch, e.to_string())
        }
        WriteError::Exists => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            Code::ObjectExists,
            e.to_string(),
        ),
        WriteError::Body(_) => ApiError::bad_request(Code::UploadInterrupted, e.to_string()),
        WriteError::TooSlow(_) => ApiError::body_timeout(e.to_string()),
        WriteError::Io(io) => ApiError::unavailable(Code::StorageUnavailable, io.to_string()),
    }
}

fn stored(meta: &Meta, status: StatusCode) -> Response {
    let etag = format!("\"{}\"", meta.sha256);
    (status, [(header::ETAG, etag)]).into_response()
}

pub async fn put(
    State(app): State<AppState>,
    Path(key): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let store = local(&app)?;
    let key = ObjectKey::parse(&key).ok_or_else(bad_grant)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ContentType::parse(v).ok())
        .map(|c| c.to_string())
        .unwrap_or_default();
    let size: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                Code::LengthRequired,
                "send Content-Length",
            )
        })?;
    let sha = q.get("sha256").map(String::as_str);
    let grant = PutGrant {
        key: &key,
        exp: exp(&q)?,
        content_type: &content_type,
        size,
        sha256: sha,
        sig: param(&q, "sig")?,
    };
    store.verify_put(&grant, Utc::now()).map_err(denied)?;
    let expected = sha
        .map(Sha256::parse)
        .transpose()
        .map_err(|_| bad_grant())?;
    let meta = store
        .write(&key, &content_type, size, expected, body.into_data_stream())
        .await
        .map_err(write_error)?;
    tracing::info!(key = %key, size_bytes = size, "object stored");
    Ok(stored(&meta, StatusCode::OK))
}

/// A field of a browser form before its `file` part may hold this many bytes.
const MAX_FIELD_BYTES: usize = 8 * 1024;
/// How many fields may come before `file` (the form Cairn hands out has four).
const MAX_FIELDS: usize = 16;
/// Everything before the `file` part's bytes: the fields, their part headers and boundaries.
const MAX_FORM_HEAD_BYTES: u64 = 64 * 1024;

/// A browser form: `key`, `content-type`, `policy` and `signature` fields, then `file`. Nothing
/// before `file` is read whole: each field stops at [`MAX_FIELD_BYTES`], all of them (with their
/// part headers) at [`MAX_FORM_HEAD_BYTES`], at most [`MAX_FIELDS`] of them, each name once; the
/// file itself streams into the store, bounded by the policy's size.
pub async fn post(State(app): State<AppState>, req: Request) -> ApiResult<Response> {
    let store = local(&app)?;
    let before_file = Arc::new(AtomicBool::new(true));
    let req = req.map(|body| {
        Body::new(FormHead {
            inner: body,
            read: 0,
            before_file: before_file.clone(),
        })
    });
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::bad_request(Code::InvalidForm, e.body_text()))?;
    let mut fields: HashMap<String, String> = HashMap::new();
    let bad = |why: String| ApiError::bad_request(Code::InvalidForm, why);
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            let name = name.to_ascii_lowercase();
            if fields.len() >= MAX_FIELDS {
                return Err(bad(format!(
                    "the form has more than {MAX_FIELDS} fields before `file`"
                )));
            }
            if fields.contains_key(&name) {
                return Err(bad(format!("the form repeats the field `{name}`")));
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(form_error)? {
                if value.len() + chunk.len() > MAX_FIELD_BYTES {
                    return Err(bad(format!(
                        "the field `{name}` is larger than {MAX_FIELD_BYTES} bytes"
                    )));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value)
                .map_err(|_| bad(format!("the field `{name}` is not UTF-8 text")))?;
            fields.insert(name, value);
            continue;
        }
        before_file.store(false, Ordering::Relaxed);
        let policy = store
            .verify_post(
                param(&fields, "policy")?,
                param(&fields, "signature")?,
                Utc::now(),
            )
            .map_err(denied)?;
        // The form's own fields must say what the policy grants.
        if param(&fields, "key")? != policy.key
            || fields
                .get("content-type")
                .map(String::as_str)
                .unwrap_or(&policy.content_type)
                != policy.content_type
        {
            return Err(denied(UrlError::BadSignature));
        }
        let key = ObjectKey::parse(&policy.key).ok_or_else(bad_grant)?;
        let expected = policy
            .sha256
            .as_deref()
            .map(Sha256::parse)
            .transpose()
            .map_err(|_| bad_grant())?;
        let meta = store
            .write(&key, &policy.content_type, policy.size, expected, field)
            .await
            .map_err(write_error)?;
        tracing::info!(key = %key, size_bytes = policy.size, "object stored from form");
        return Ok(stored(&meta, StatusCode::NO_CONTENT));
    }
    Err(ApiError::bad_request(
        Code::InvalidForm,
        "the form has no `file` field",
    ))
}

/// A form that cannot be read: too slow (408), too much before `file`, or malformed (400).
fn form_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if crate::storage::is_timeout(&e) {
        return ApiError::body_timeout(e.to_string());
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        if err.is::<FormHeadTooLarge>() {
            return ApiError::bad_request(Code::InvalidForm, err.to_string());
        }
        cur = err.source();
    }
    ApiError::bad_request(Code::InvalidForm, e.body_text())
}

#[derive(Debug, thiserror::Error)]
#[error("the form's fields before `file` are larger than {MAX_FORM_HEAD_BYTES} bytes")]
struct FormHeadTooLarge;

/// The form's body, refused once [`MAX_FORM_HEAD_BYTES`] have come before the `file` part is
/// reached: the multipart parser buffers a part's headers until they end, so this bounds that
/// too.
struct FormHead {
    inner: Body,
    read: u64,
    before_file: Arc<AtomicBool>,
}

impl HttpBody for FormHead {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if self.before_file.load(Ordering::Relaxed) {
                // A read that begins within the bound passes whole: the `file` part may begin
                // in it. So the parser holds at most the bound and one read (hyper's reads are
                // bounded too).
                if self.read >= MAX_FORM_HEAD_BYTES {
                    return Poll::Ready(Some(Err(axum::Error::new(FormHeadTooLarge))));
                }
                self.read += f.data_ref().map_or(0, |d| d.len() as u64);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pub async fn get(
    State(app): State<AppState>,
    Path(key): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let store = local(&app)?;
    let key = ObjectKey::parse(&key).ok_or_else(bad_grant)?;
    let exp = exp(&q)?;
    let filename = param(&q, "filename")?;
    let disposition = param(&q, "disposition")?;
    let now = Utc::now();
    store
        .verify_get(&key, exp, filename, disposition, param(&q, "sig")?, now)
        .map_err(denied)?;
    let max_age = (exp - now.timestamp()).max(0);
    serve(
        store,
        &key,
        Some(content_disposition(filename, disposition == "inline")),
        format!("private, max-age={max_age}"),
        &headers,
    )
    .await
    .map(|res| super::served::metered(&app, &key, res))
}

/// Headers of everything Cairn serves from the store, whoever uploaded it: the browser takes
/// the declared type at its word (`nosniff`), and active content runs in a sandbox with an
/// opaque origin, never as Cairn's own origin (where the API and `/admin` live).
fn content_safety(
    res: axum::http::response::Builder,
    content_type: &str,
) -> axum::http::response::Builder {
    let res = res.header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if crate::storage::is_passive(content_type) {
        res
    } else {
        res.header(header::CONTENT_SECURITY_POLICY, "sandbox")
    }
}

/// Objects up to this size are read whole in one blocking call and sent as one body.
const WHOLE: u64 = 64 * 1024;

/// The read buffer of a streamed object.
const STREAM_BUFFER: usize = 256 * 1024;

/// Streams a stored object with `ETag`, `Cache-Control`, `Content-Disposition` (when given),
/// the content safety headers and `Range`/`If-Range`/`If-None-Match` support.
pub async fn serve(
    store: &LocalStore,
    key: &ObjectKey,
    disposition: Option<String>,
    cache_control: String,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let (contents, meta) = store
        .read(key, WHOLE)
        .await?
        .ok_or_else(ApiError::not_found)?;

    let etag = format!("\"{}\"", meta.sha256);
    let mut res = content_safety(Response::builder(), &meta.content_type)
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, cache_control);
    if let Some(d) = disposition {
        res = res.header(header::CONTENT_DISPOSITION, d);
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return res
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(internal);
    }
    res = res.header(header::CONTENT_TYPE, &meta.content_type);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // A Range for an older version of the object is served whole (If-Range).
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let outcome = if if_range_ok {
        range::parse(range, meta.size)
    } else {
        RangeOutcome::Full
    };
    let (status, start, len) = match outcome {
        RangeOutcome::Full => (StatusCode::OK, 0, meta.size),
        RangeOutcome::Partial(a, b) => {
            res = res.header(
                header::CONTENT_RANGE,
                format!("bytes {a}-{b}/{}", meta.size),
            );
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        RangeOutcome::Unsatisfiable => {
            return res
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{}", meta.size))
                .body(Body::empty())
                .map_err(internal);
        }
    };
    let body = match contents {
        Contents::Whole(bytes) => {
            let end = (start + len) as usize;
            if end > bytes.len() {
                return Err(ApiError::unavailable(
                    Code::StorageUnavailable,
                    format!(
                        "{key}: {} bytes on disk, {} recorded",
                        bytes.len(),
                        meta.size
                    ),
                ));
            }
            Body::from(bytes.slice(start as usize..end))
        }
        Contents::File(mut file) => {
            if start > 0 {
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|e| ApiError::unavailable(Code::StorageUnavailable, e.to_string()))?;
            }
            let buffer = len.clamp(1, STREAM_BUFFER as u64) as usize;
            Body::from_stream(ReaderStream::with_capacity(file.take(len), buffer))
        }
    };
    res.status(status)
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .map_err(internal)
}

fn internal(e: axum::http::Error) -> ApiError {
    ApiError::internal(e.to_string())
}
