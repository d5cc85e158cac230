//! The object store behind one small trait, implemented by the local directory (embedded default)
//! and S3. The app holds an `Arc<dyn ObjectStore>` chosen by config.
use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::values::{ContentType, Filename, ObjectKey, Sha256, SizeBytes};

mod content;
pub mod local;
pub mod retry;
pub mod s3;
mod s3_upload;
pub mod signing;
pub mod sigv4;

pub use content::{content_disposition, is_passive, shows_inline};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is overloaded; the caller may retry.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("object store error: {0}")]
    Other(String),
}

/// An unreachable store is an outage worth a retry; anything else is a fault.
impl From<StoreError> for crate::problem::Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self::StoreUnavailable { cause },
            StoreError::Other(detail) => Self::internal(format!("object store error: {detail}")),
        }
    }
}

/// What the store knows of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// Present when the store recorded it at upload; otherwise [`ObjectStore::digest`] computes it.
    pub sha256: Option<Sha256>,
    /// The `Content-Type` the object is served with, when the store keeps one.
    pub content_type: Option<String>,
}

/// A body streamed into the store.
pub type BodyStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send>,
>;

/// Why a streamed upload was not stored. Nothing is left in the store in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the body is larger than the declared {declared} bytes")]
    TooLarge { declared: u64 },
    #[error("received {received} bytes, {declared} were declared")]
    SizeMismatch { declared: u64, received: u64 },
    #[error("the content does not match the declared sha256")]
    ChecksumMismatch,
    #[error("an object already exists at this key")]
    Exists,
    #[error("the upload was interrupted: {0}")]
    Body(String),
    /// The client sent the body too slowly ([`BodyTimedOut`]).
    #[error("{0}")]
    TooSlow(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PutError {
    /// Why reading the client's body failed: too slow, or interrupted.
    pub fn body(e: &(dyn std::error::Error + 'static)) -> Self {
        if is_timeout(e) {
            Self::TooSlow(e.to_string())
        } else {
            Self::Body(e.to_string())
        }
    }
}

/// Reading a request body failed because the client sent it too slowly (the HTTP layer's pace,
/// `CAIRN_BODY_TIMEOUT_SECS` and `CAIRN_BODY_MIN_RATE`).
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly: under {min_bytes} bytes in {secs} s")]
pub struct BodyTimedOut {
    pub min_bytes: u64,
    pub secs: u64,
}

/// Whether `e` (or any error it wraps, through `io::Error`s too) is a [`BodyTimedOut`].
pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        // `io::Error::source` skips the error it carries; look at that one too.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if is_timeout(inner) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// The facts an upload URL binds: the store refuses any other key, type, size or content.
#[derive(Debug, Clone)]
pub struct UploadSpec<'a> {
    pub key: &'a ObjectKey,
    pub content_type: &'a ContentType,
    pub size: SizeBytes,
    pub sha256: Option<Sha256>,
    /// Stored with the object; objects are immutable (keys never repeat), so caches may keep them.
    pub cache_control: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// `Cache-Control` of private objects.
pub const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";

/// A presigned upload as the API returns it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "method")]
pub enum Upload {
    /// PUT the bytes to `url` sending exactly `headers`.
    #[serde(rename = "PUT")]
    Put {
        url: String,
        headers: BTreeMap<String, String>,
    },
    /// POST a multipart form to `url` with `fields` first and the file last, in field `file`.
    #[serde(rename = "POST")]
    Post {
        url: String,
        fields: BTreeMap<String, String>,
    },
    /// PUT each part (`part_size` bytes, the last one the rest) to its URL, then register or
    /// complete with the parts' ETags.
    #[serde(rename = "MULTIPART")]
    Multipart {
        upload_id: String,
        part_size: u64,
        parts: Vec<PartUrl>,
    },
}

impl Upload {
    pub fn method(&self) -> &'static str {
        match self {
            Upload::Put { .. } => "PUT",
            Upload::Post { .. } => "POST",
            Upload::Multipart { .. } => "MULTIPART",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartUrl {
    pub part_number: i32,
    pub url: String,
}

/// A part the client uploaded: its number and the ETag the store answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub part_number: i32,
    pub etag: String,
}

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// One page of a listing; `next` continues it.
#[derive(Debug, Clone, Default)]
pub struct ObjectPage {
    pub objects: Vec<ListedObject>,
    pub next: Option<String>,
}

/// A multipart upload the store still holds open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: DateTime<Utc>,
}

/// A file an interrupted upload left in the store's scratch space (the local store's `tmp/`):
/// uploads remove theirs on every error path, so only a killed process leaves one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempFile {
    /// Its name in the scratch space.
    pub name: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// The most keys one multi-object delete request carries (S3's limit).
pub const DELETE_BATCH: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMethod {
    Put,
    Post,
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Size (and SHA-256 when recorded) of the object at `key`, or `None` when there is none.
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError>;

    /// SHA-256 of the stored bytes, streamed in bounded memory; `None` when there is no object.
    async fn digest(&self, key: &ObjectKey) -> Result<Option<Sha256>, StoreError>;

    /// Up to `len` first bytes of a non-empty object (for the content-type check); `None` when
    /// there is no object.
    async fn read_prefix(&self, key: &ObjectKey, len: usize)
        -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes the object; removing a missing object is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;

    /// Removes up to [`DELETE_BATCH`] objects, in one request where the store has multi-object
    /// delete. Answers the keys it could not remove, with why; missing objects are not errors.
    async fn delete_many(&self, keys: &[ObjectKey]) -> Result<Vec<(String, String)>, StoreError> {
        Ok(delete_each(self, keys).await)
    }

    /// One page (up to 1000) of the objects under `prefix`, in key order, continuing after
    /// `next` from the previous page.
    async fn list_objects(
        &self,
        prefix: &str,
        next: Option<String>,
    ) -> Result<ObjectPage, StoreError>;

    /// Multipart uploads open under `prefix` (none on stores without multipart uploads).
    async fn list_multipart_uploads(&self, _prefix: &str) -> Result<Vec<OpenUpload>, StoreError> {
        Ok(Vec::new())
    }

    /// Temp files not modified since `before` (none on stores that write no temp files of their
    /// own, as S3: its incomplete multipart uploads are listed above).
    async fn list_temp_files(&self, _before: DateTime<Utc>) -> Result<Vec<TempFile>, StoreError> {
        Ok(Vec::new())
    }

    /// Removes a temp file [`ObjectStore::list_temp_files`] named; a missing one is not an error.
    async fn remove_temp_file(&self, name: &str) -> Result<(), StoreError> {
        Err(StoreError::Other(format!(
            "this store has no temp file {name}"
        )))
    }

    /// Streams exactly `spec.size` bytes into the store at `spec.key`, hashing on the fly and
    /// checking `spec.sha256` when given; returns the content's SHA-256. Never overwrites.
    async fn put_stream(&self, spec: &UploadSpec<'_>, body: BodyStream)
        -> Result<Sha256, PutError>;

    /// A URL (or form) that uploads exactly the bytes `spec` describes to `spec.key`.
    async fn presign_upload(
        &self,
        spec: &UploadSpec<'_>,
        method: UploadMethod,
    ) -> Result<Upload, StoreError>;

    /// Opens a multipart upload that the client feeds through presigned part URLs; `None` when
    /// the store takes any size in one PUT (the local backend).
    async fn presign_multipart(
        &self,
        _spec: &UploadSpec<'_>,
    ) -> Result<Option<Upload>, StoreError> {
        Ok(None)
    }

    /// Completes a presigned multipart upload with the client's parts, or with the parts the
    /// store lists when `parts` is `None`. `StoreError::Other` means the parts do not make an
    /// object (missing, wrong ETag, too small).
    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        _upload_id: &str,
        _parts: Option<&[UploadedPart]>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Other(format!("no multipart upload for {key}")))
    }

    /// Aborts a multipart upload; aborting a finished or unknown one is not an error.
    async fn abort_multipart(&self, _key: &ObjectKey, _upload_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// The bytes the parts of an open multipart upload hold, as the store lists them (what
    /// aborting it frees): 0 for a finished or unknown upload, and on stores without multipart
    /// uploads.
    async fn multipart_bytes(&self, _key: &ObjectKey, _upload_id: &str) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// A GET URL for `key` until `expires_at`, answered with `Content-Disposition` naming
    /// `filename`, `inline` or as an attachment ([`content_disposition`]).
    async fn presign_download(
        &self,
        key: &ObjectKey,
        filename: &Filename,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError>;

    /// Whether the store's own download URLs are served by Cairn, with `nosniff` and the sandbox
    /// for active content (the local store's `/o/`); an S3 URL is served by S3 as stored.
    fn serves_safely(&self) -> bool {
        false
    }

    /// A GET URL for `key` until `expires_at`, answering with `Content-Disposition:
    /// disposition` when given (the `/cdn/` endpoint redirects to it). Stores whose objects
    /// Cairn serves itself have none.
    async fn presign_get(
        &self,
        key: &ObjectKey,
        _disposition: Option<&str>,
        _expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        Err(StoreError::Other(format!(
            "this store serves {key} itself; it has no presigned GET"
        )))
    }

    /// The object's stable URI (`s3://bucket/key`, `local:///key`) recorded in the catalog.
    fn uri(&self, key: &ObjectKey) -> String;

    /// When every URL this store signs stops working, whatever its own expiry: the end of the
    /// temporary credentials it signs with (a role's session). `None` when they do not expire
    /// (long-term keys; the local store's own key). See [`url_expiry`].
    async fn signing_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }

    /// Whether the store answers; `/readyz` calls it.
    async fn check_ready(&self) -> Result<(), StoreError>;

    /// Size and SHA-256 of the stored object, hashing it when the store kept no checksum.
    async fn facts(&self, key: &ObjectKey) -> Result<Option<(u64, Sha256)>, StoreError> {
        let Some(info) = self.head(key).await? else {
            return Ok(None);
        };
        let sha = match info.sha256 {
            Some(s) => s,
            None => match self.digest(key).await? {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        Ok(Some((info.size, sha)))
    }
}

/// The expiry a URL the store presigns really has when `wanted` is asked for: `wanted`, cut to
/// the store's [`ObjectStore::signing_deadline`]. What Cairn reports as a URL's `expires_at`.
pub async fn url_expiry<S: ObjectStore + ?Sized>(
    store: &S,
    wanted: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    Ok(match store.signing_deadline().await? {
        Some(end) => wanted.min(end),
        None => wanted,
    })
}

/// Removes `keys` with one [`ObjectStore::delete`] each; answers the keys that failed, with why.
pub async fn delete_each<S: ObjectStore + ?Sized>(
    store: &S,
    keys: &[ObjectKey],
) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for key in keys {
        if let Err(e) = store.delete(key).await {
            failed.push((key.as_str().to_owned(), e.to_string()));
        }
    }
    failed
}
