//! `ApiJson`: axum's JSON extractor with its rejections turned into problem+json codes
//! (`invalid_json`, `invalid_request`, `unsupported_media_type`, `payload_too_large`,
//! `body_timeout`), and the same checks for bodies read by hand.
use axum::{
    extract::{
        rejection::{BytesRejection, JsonRejection},
        FromRequest, Request,
    },
    http::{header, HeaderMap, StatusCode},
};
use serde::{de::DeserializeOwned, Deserialize};

use crate::error::ApiError;
use crate::problem::Code;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(rejection(rej)),
        }
    }
}

/// Refuses a body not sent as JSON (`application/json` or `+json`), as [`ApiJson`] does.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        ))
    }
}

/// A body that could not be read whole: too large (413), too slow (408), or cut off (400).
pub fn bytes_rejection(rej: BytesRejection) -> ApiError {
    if crate::storage::is_timeout(&rej) {
        return ApiError::body_timeout(rej.body_text());
    }
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::PayloadTooLarge,
            "the request body is too large",
        );
    }
    ApiError::bad_request(Code::InvalidRequest, rej.body_text())
}

/// Parses a JSON body read by hand, with the same codes as [`ApiJson`].
pub fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request(Code::InvalidRequest, e.to_string())
        }
        _ => ApiError::bad_request(Code::InvalidJson, e.to_string()),
    })
}

fn rejection(rej: JsonRejection) -> ApiError {
    let detail = rej.body_text();
    if crate::storage::is_timeout(&rej) {
        return ApiError::body_timeout(detail);
    }
    match rej {
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request(Code::InvalidJson, detail),
        JsonRejection::JsonDataError(_) => ApiError::bad_request(Code::InvalidRequest, detail),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::PayloadTooLarge,
            "the request body is too large",
        ),
        _ => ApiError::bad_request(Code::InvalidRequest, detail),
    }
}
