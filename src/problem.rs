//! The failures of Cairn's own work, in its own words, below HTTP: [`Problem`] says what went
//! wrong (not found, invalid, conflict, quota, store or catalog unavailable, contention, …) and
//! [`Code`] names it with the stable problem code clients see. `error.rs` maps a problem to HTTP
//! (status, `Retry-After`, problem+json) in one `match` and logs 5xx once; nothing here knows
//! HTTP. The README's list of codes is checked against [`Code::ALL`].
use std::fmt;

macro_rules! codes {
    ($($variant:ident = $s:literal,)*) => {
        /// A stable problem code: the `code` member of every error body.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in the README's order-insensitive list.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $s,)*
                }
            }
        }
    };
}

codes! {
    ArtifactFailed = "artifact_failed",
    AssetConflict = "asset_conflict",
    AssetFailed = "asset_failed",
    BodyTimeout = "body_timeout",
    CatalogUnavailable = "catalog_unavailable",
    CdnSigningDisabled = "cdn_signing_disabled",
    ChecksumMismatch = "checksum_mismatch",
    ContentMismatch = "content_mismatch",
    ContentTypeMismatch = "content_type_mismatch",
    Contention = "contention",
    Forbidden = "forbidden",
    Internal = "internal",
    InvalidCaptureLocation = "invalid_capture_location",
    InvalidContentType = "invalid_content_type",
    InvalidCursor = "invalid_cursor",
    InvalidDownload = "invalid_download",
    InvalidExpiresAt = "invalid_expires_at",
    InvalidExpiresIn = "invalid_expires_in",
    InvalidFilename = "invalid_filename",
    InvalidForm = "invalid_form",
    InvalidJson = "invalid_json",
    InvalidKeyframes = "invalid_keyframes",
    InvalidKind = "invalid_kind",
    InvalidLineage = "invalid_lineage",
    InvalidMetadata = "invalid_metadata",
    InvalidMethod = "invalid_method",
    InvalidParts = "invalid_parts",
    InvalidPiiFlags = "invalid_pii_flags",
    InvalidQuery = "invalid_query",
    InvalidQuota = "invalid_quota",
    InvalidRequest = "invalid_request",
    InvalidRetention = "invalid_retention",
    InvalidRunId = "invalid_run_id",
    InvalidScope = "invalid_scope",
    InvalidSha256 = "invalid_sha256",
    InvalidSize = "invalid_size",
    InvalidSourceRef = "invalid_source_ref",
    InvalidSummary = "invalid_summary",
    InvalidTenant = "invalid_tenant",
    InvalidUri = "invalid_uri",
    InvalidVisibility = "invalid_visibility",
    InvalidWait = "invalid_wait",
    LegalHold = "legal_hold",
    LengthRequired = "length_required",
    LifecycleRunning = "lifecycle_running",
    MeteringRunning = "metering_running",
    NoContent = "no_content",
    NotAvailable = "not_available",
    NotFound = "not_found",
    NotPending = "not_pending",
    NotRegistered = "not_registered",
    ObjectExists = "object_exists",
    ObjectMissing = "object_missing",
    PayloadTooLarge = "payload_too_large",
    QuotaExceeded = "quota_exceeded",
    SignatureInvalid = "signature_invalid",
    SignatureRequired = "signature_required",
    SizeMismatch = "size_mismatch",
    SizeTooLarge = "size_too_large",
    StorageUnavailable = "storage_unavailable",
    Unauthorized = "unauthorized",
    UnknownLineageRef = "unknown_lineage_ref",
    UnsupportedContentType = "unsupported_content_type",
    UnsupportedMediaType = "unsupported_media_type",
    UploadIncomplete = "upload_incomplete",
    UploadInterrupted = "upload_interrupted",
    UrlExpired = "url_expired",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What went wrong. `detail` is for the caller, except in the variants whose field is a
/// `cause`: that one stays in the log.
#[derive(Debug)]
pub enum Problem {
    /// The same answer whether the id never existed or belongs to another tenant or env.
    NotFound,
    /// The request is malformed or out of range.
    Invalid { code: Code, detail: String },
    /// Well-formed, but what it states does not hold (the stored bytes, a lineage ref).
    Unprocessable { code: Code, detail: String },
    /// The item is not in a state that allows this.
    Conflict { code: Code, detail: String },
    /// The caller may not do this.
    Forbidden { code: Code, detail: String },
    /// No valid credentials.
    Unauthorized(String),
    /// The tenant's quota refuses the item: `quota` says which limit, its use and the request.
    Quota {
        detail: String,
        quota: serde_json::Value,
    },
    /// More bytes than allowed.
    TooLarge { code: Code, detail: String },
    /// The client sent its body too slowly (`CAIRN_BODY_TIMEOUT_SECS`).
    TooSlow(String),
    /// The object store does not answer; worth a retry.
    StoreUnavailable { cause: String },
    /// The catalog does not answer; worth a retry.
    CatalogUnavailable { cause: String },
    /// A concurrent change won every attempt; worth a retry.
    Contention(String),
    /// A bug or an unexpected answer from a dependency.
    Internal { cause: String },
}

pub type Result<T, E = Problem> = std::result::Result<T, E>;

impl Problem {
    pub fn not_found() -> Self {
        Self::NotFound
    }
    pub fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            detail: detail.into(),
        }
    }
    pub fn unprocessable(code: Code, detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            detail: detail.into(),
        }
    }
    pub fn conflict(code: Code, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }
    /// Forbidden with code `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::denied(Code::Forbidden, detail)
    }
    /// Forbidden with a code of its own (`signature_invalid`, `url_expired`, …).
    pub fn denied(code: Code, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            detail: detail.into(),
        }
    }
    pub fn too_large(code: Code, detail: impl Into<String>) -> Self {
        Self::TooLarge {
            code,
            detail: detail.into(),
        }
    }
    pub fn contention(detail: impl Into<String>) -> Self {
        Self::Contention(detail.into())
    }
    pub fn internal(cause: impl Into<String>) -> Self {
        Self::Internal {
            cause: cause.into(),
        }
    }

    /// The stable code of this problem.
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound => Code::NotFound,
            Self::Invalid { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Conflict { code, .. }
            | Self::Forbidden { code, .. }
            | Self::TooLarge { code, .. } => *code,
            Self::Unauthorized(_) => Code::Unauthorized,
            Self::Quota { .. } => Code::QuotaExceeded,
            Self::TooSlow(_) => Code::BodyTimeout,
            Self::StoreUnavailable { .. } => Code::StorageUnavailable,
            Self::CatalogUnavailable { .. } => Code::CatalogUnavailable,
            Self::Contention(_) => Code::Contention,
            Self::Internal { .. } => Code::Internal,
        }
    }

    /// What the problem says: the caller's detail, or the cause kept for the log.
    pub fn detail(&self) -> &str {
        match self {
            Self::NotFound => "no such resource",
            Self::Invalid { detail, .. }
            | Self::Unprocessable { detail, .. }
            | Self::Conflict { detail, .. }
            | Self::Forbidden { detail, .. }
            | Self::TooLarge { detail, .. }
            | Self::Quota { detail, .. } => detail,
            Self::Unauthorized(detail) | Self::TooSlow(detail) | Self::Contention(detail) => detail,
            Self::StoreUnavailable { cause }
            | Self::CatalogUnavailable { cause }
            | Self::Internal { cause } => cause,
        }
    }

    /// Cairn's fault or an outage rather than the request's: the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::StoreUnavailable { .. }
                | Self::CatalogUnavailable { .. }
                | Self::Contention(_)
                | Self::Internal { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}

impl std::error::Error for Problem {}

impl From<sea_orm::DbErr> for Problem {
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
        if unreachable {
            Self::CatalogUnavailable {
                cause: e.to_string(),
            }
        } else {
            Self::internal(format!("catalog error: {e}"))
        }
    }
}

impl From<sea_orm::TransactionError<sea_orm::DbErr>> for Problem {
    fn from(e: sea_orm::TransactionError<sea_orm::DbErr>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(e)
            | sea_orm::TransactionError::Transaction(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests;
