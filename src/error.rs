//! `ApiError`: the one place where failures become HTTP. Every error is
//! `application/problem+json` `{type, title, status, detail, code, trace_id}` with a stable `code`.
//! 5xx errors are logged here, once.
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{domain::ValueError, http::trace::current_trace_id, storage::StoreError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds, for 503s.
    pub retry_after: Option<u32>,
    /// Extension members of the problem (RFC 9457), e.g. a quota's usage and limit.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            extra: None,
        }
    }

    /// Adds an extension member to the problem.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(name.to_owned(), value);
        self
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn forbidden_code(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }
    /// The same answer whether the id never existed or belongs to another tenant or env.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        }
    }
    /// 408: the client sent its request body too slowly (`CAIRN_BODY_TIMEOUT_SECS`).
    pub fn body_timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    trace_id: String,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let trace_id = current_trace_id();
        if self.status.is_server_error() {
            tracing::error!(code = self.code, detail = %self.detail, "request failed");
        }
        // Internal details stay in the log.
        let detail = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error; quote the trace_id when reporting it"
        } else {
            &self.detail
        };
        let body = Problem {
            kind: format!("urn:cairn:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail,
            code: self.code,
            trace_id,
            extra: self.extra.unwrap_or_default(),
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<ValueError> for ApiError {
    fn from(e: ValueError) -> Self {
        Self::bad_request(e.code, e.detail)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        use sea_orm::{sqlx::Error as Sqlx, DbErr, RuntimeErr};
        let unreachable = match &e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
            DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => {
                matches!(
                    s,
                    Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed
                )
            }
            _ => false,
        };
        match e {
            _ if unreachable => {
                tracing::error!(error = %e, "catalog unreachable");
                Self::unavailable(
                    "catalog_unavailable",
                    "the catalog is unreachable; retry later",
                )
            }
            other => Self::internal(format!("catalog error: {other}")),
        }
    }
}

impl From<sea_orm::TransactionError<sea_orm::DbErr>> for ApiError {
    fn from(e: sea_orm::TransactionError<sea_orm::DbErr>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(e)
            | sea_orm::TransactionError::Transaction(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "object store unreachable");
                Self::unavailable(
                    "storage_unavailable",
                    "the object store is unreachable; retry later",
                )
            }
            StoreError::Other(detail) => Self::internal(format!("object store error: {detail}")),
        }
    }
}

impl From<crate::cdn::DeliveryError> for ApiError {
    fn from(e: crate::cdn::DeliveryError) -> Self {
        match e {
            crate::cdn::DeliveryError::Store(e) => e.into(),
            // Start-up refuses a configuration without an active key, so this is a bug.
            crate::cdn::DeliveryError::Sign(e) => {
                Self::internal(format!("CloudFront signing: {e}"))
            }
        }
    }
}
