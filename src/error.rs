//! `ApiError`: the one place where failures become HTTP. Every error is
//! `application/problem+json` `{type, title, status, detail, code, trace_id}` with a stable
//! [`Code`]. A domain [`Problem`] is mapped to its status in one `match` ([`From<Problem>`]);
//! HTTP-only refusals (bearer token, request body, headers) are built here too, with a `Code`.
//! 5xx errors are logged here, once, with their cause.
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    problem::{Code, Problem},
    storage::StoreError,
    telemetry::current_trace_id,
    values::ValueError,
};

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: u32 = 5;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub detail: String,
    /// Seconds, for 503s.
    pub retry_after: Option<u32>,
    /// Extension members of the problem (RFC 9457), e.g. a quota's usage and limit.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    /// What went wrong underneath, for the log only (an outage's or a bug's cause).
    pub cause: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An HTTP-only refusal with its own status.
    pub fn new(status: StatusCode, code: Code, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            extra: None,
            cause: None,
        }
    }

    /// Adds an extension member to the problem.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(name.to_owned(), value);
        self
    }
    pub fn bad_request(code: Code, detail: impl Into<String>) -> Self {
        Problem::invalid(code, detail).into()
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::Unauthorized(detail.into()).into()
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::forbidden(detail).into()
    }
    pub fn forbidden_code(code: Code, detail: impl Into<String>) -> Self {
        Problem::denied(code, detail).into()
    }
    /// The same answer whether the id never existed or belongs to another tenant or env.
    pub fn not_found() -> Self {
        Problem::NotFound.into()
    }
    pub fn conflict(code: Code, detail: impl Into<String>) -> Self {
        Problem::conflict(code, detail).into()
    }
    pub fn unprocessable(code: Code, detail: impl Into<String>) -> Self {
        Problem::unprocessable(code, detail).into()
    }
    /// 503 with `Retry-After`, saying `detail` to the caller.
    pub fn unavailable(code: Code, detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(RETRY_AFTER_SECS),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        }
    }
    /// 408: the client sent its request body too slowly (`CAIRN_BODY_TIMEOUT_SECS`).
    pub fn body_timeout(detail: impl Into<String>) -> Self {
        Problem::TooSlow(detail.into()).into()
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Problem::internal(detail).into()
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        let code = p.code();
        let outage = |cause: String, detail: &str| Self {
            cause: Some(cause),
            ..Self::unavailable(code, detail)
        };
        match p {
            Problem::NotFound => Self::new(StatusCode::NOT_FOUND, code, p.detail()),
            Problem::Invalid { detail, .. } => Self::new(StatusCode::BAD_REQUEST, code, detail),
            Problem::Unprocessable { detail, .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            }
            Problem::Conflict { detail, .. } => Self::new(StatusCode::CONFLICT, code, detail),
            Problem::Forbidden { detail, .. } => Self::new(StatusCode::FORBIDDEN, code, detail),
            Problem::Unauthorized(detail) => Self::new(StatusCode::UNAUTHORIZED, code, detail),
            Problem::Quota { detail, quota } => {
                Self::new(StatusCode::FORBIDDEN, code, detail).with("quota", quota)
            }
            Problem::TooLarge { detail, .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, detail)
            }
            Problem::TooSlow(detail) => Self::new(StatusCode::REQUEST_TIMEOUT, code, detail),
            Problem::StoreUnavailable { cause } => {
                outage(cause, "the object store is unreachable; retry later")
            }
            Problem::CatalogUnavailable { cause } => {
                outage(cause, "the catalog is unreachable; retry later")
            }
            Problem::Contention(detail) => Self::unavailable(code, detail),
            Problem::Internal { cause } => Self {
                cause: Some(cause),
                ..Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code,
                    "internal error; quote the trace_id when reporting it",
                )
            },
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
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
            tracing::error!(
                code = self.code.as_str(),
                detail = %self.detail,
                cause = self.cause.as_deref().unwrap_or(""),
                "request failed"
            );
        }
        let body = Body {
            kind: format!("urn:cairn:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code.as_str(),
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

/// The failures below HTTP convert through [`Problem`], so each maps in one place.
macro_rules! through_problem {
    ($($t:ty),*) => {
        $(impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                Problem::from(e).into()
            }
        })*
    };
}

through_problem!(
    ValueError,
    sea_orm::DbErr,
    sea_orm::TransactionError<sea_orm::DbErr>,
    StoreError,
    crate::cdn::DeliveryError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_has_its_status_and_code() {
        let s = |p: Problem| {
            let e = ApiError::from(p);
            (e.status.as_u16(), e.code.as_str(), e.retry_after)
        };
        assert_eq!(s(Problem::NotFound), (404, "not_found", None));
        assert_eq!(
            s(Problem::invalid(Code::InvalidSize, "x")),
            (400, "invalid_size", None)
        );
        assert_eq!(
            s(Problem::unprocessable(Code::SizeMismatch, "x")),
            (422, "size_mismatch", None)
        );
        assert_eq!(
            s(Problem::conflict(Code::LegalHold, "x")),
            (409, "legal_hold", None)
        );
        assert_eq!(s(Problem::forbidden("x")), (403, "forbidden", None));
        assert_eq!(
            s(Problem::Unauthorized("x".into())),
            (401, "unauthorized", None)
        );
        assert_eq!(
            s(Problem::too_large(Code::PayloadTooLarge, "x")),
            (413, "payload_too_large", None)
        );
        assert_eq!(s(Problem::TooSlow("x".into())), (408, "body_timeout", None));
        assert_eq!(s(Problem::contention("x")), (503, "contention", Some(5)));
        assert_eq!(
            s(Problem::StoreUnavailable { cause: "x".into() }),
            (503, "storage_unavailable", Some(5))
        );
        assert_eq!(
            s(Problem::CatalogUnavailable { cause: "x".into() }),
            (503, "catalog_unavailable", Some(5))
        );
        assert_eq!(s(Problem::internal("x")), (500, "internal", None));
        let quota = ApiError::from(Problem::Quota {
            detail: "over".into(),
            quota: serde_json::json!({ "used": 1 }),
        });
        assert_eq!(
            (quota.status.as_u16(), quota.code.as_str()),
            (403, "quota_exceeded")
        );
        assert_eq!(quota.extra.unwrap()["quota"]["used"], 1);
    }

    #[test]
    fn causes_stay_in_the_log() {
        let e = ApiError::from(Problem::internal("catalog error: secret table name"));
        assert!(!e.detail.contains("secret"), "{}", e.detail);
        assert_eq!(e.cause.as_deref(), Some("catalog error: secret table name"));
        let e = ApiError::from(Problem::StoreUnavailable {
            cause: "connection refused to 10.0.0.1".into(),
        });
        assert_eq!(e.detail, "the object store is unreachable; retry later");
    }

    /// Counts the events logged at ERROR.
    struct Errors(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Errors {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if *event.metadata().level() == tracing::Level::ERROR {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn an_outage_is_logged_once_on_its_way_to_the_client() {
        use tracing_subscriber::layer::SubscriberExt;
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Errors(count.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let outages: [ApiError; 3] = [
                sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal("refused".into())).into(),
                StoreError::Unavailable("timed out".into()).into(),
                StoreError::Other("bad answer".into()).into(),
            ];
            for e in outages {
                let res = e.into_response();
                assert!(res.status().is_server_error());
            }
            let _ = ApiError::from(Problem::NotFound).into_response();
        });
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
