//! [`ObjectStore`] for the S3 backend: object calls through aws-sdk-s3, URLs signed by
//! [`sigv4`](crate::storage::sigv4).
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::{
    error::ProvideErrorMetadata,
    types::{ChecksumMode, ChecksumType, Delete, ObjectIdentifier},
};
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::Digest;

use super::{chrono_time, seconds_until, store_error, S3Store};
use crate::{
    storage::{
        BodyStream, ListedObject, ObjectInfo, ObjectPage, ObjectStore, OpenUpload, PutError,
        StoreError, Upload, UploadMethod, UploadSpec, UploadedPart,
    },
    values::{Filename, ObjectKey, Sha256},
};

#[async_trait]
impl ObjectStore for S3Store {
    #[tracing::instrument(skip(self, spec, body), fields(bucket = %self.bucket, key = %spec.key, size = spec.size.get()))]
    async fn put_stream(
        &self,
        spec: &UploadSpec<'_>,
        body: BodyStream,
    ) -> Result<Sha256, PutError> {
        crate::storage::s3_upload::put_stream(self, spec, body).await
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        let res = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let out = match res {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        // A composite (multipart) checksum is not the object's SHA-256.
        let sha256 = match (out.checksum_sha256(), out.checksum_type()) {
            (Some(b64), t) if !matches!(t, Some(ChecksumType::Composite)) && !b64.contains('-') => {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map(Sha256::from_bytes)
            }
            _ => None,
        };
        Ok(Some(ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            sha256,
            content_type: out.content_type().map(str::to_owned),
        }))
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn digest(&self, key: &ObjectKey) -> Result<Option<Sha256>, StoreError> {
        let res = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await;
        let mut out = match res {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = out
            .body
            .try_next()
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading {key}: {e}")))?
        {
            hasher.update(&chunk);
        }
        Ok(Some(Sha256::from_bytes(hasher.finalize().into())))
    }

    async fn read_prefix(
        &self,
        key: &ObjectKey,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let res = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .range(format!("bytes=0-{}", len.max(1) - 1))
            .send()
            .await;
        let out = match res {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading {key}: {e}")))?
            .into_bytes();
        Ok(Some(bytes[..bytes.len().min(len)].to_vec()))
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// One DeleteObjects request (quiet: only failures come back), retried when transient.
    #[tracing::instrument(skip(self, keys), fields(bucket = %self.bucket, keys = keys.len()))]
    async fn delete_many(&self, keys: &[ObjectKey]) -> Result<Vec<(String, String)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k.as_str()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let out = self
            .backoff
            .run("delete_objects", || async {
                self.client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete.clone())
                    .send()
                    .await
                    .map_err(store_error)
            })
            .await?;
        Ok(out
            .errors()
            .iter()
            .filter(|e| e.code() != Some("NoSuchKey"))
            .map(|e| {
                (
                    e.key().unwrap_or_default().to_owned(),
                    format!(
                        "{}: {}",
                        e.code().unwrap_or("error"),
                        e.message().unwrap_or_default()
                    ),
                )
            })
            .collect())
    }

    async fn list_objects(
        &self,
        prefix: &str,
        next: Option<String>,
    ) -> Result<ObjectPage, StoreError> {
        let out = self
            .backoff
            .run("list_objects", || async {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(next.clone())
                    .send()
                    .await
                    .map_err(store_error)
            })
            .await?;
        Ok(ObjectPage {
            objects: out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ListedObject {
                        key: o.key()?.to_owned(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        last_modified: o.last_modified().map(chrono_time).unwrap_or_default(),
                    })
                })
                .collect(),
            next: out
                .is_truncated()
                .unwrap_or(false)
                .then(|| out.next_continuation_token().map(str::to_owned))
                .flatten(),
        })
    }

    async fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>, StoreError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let out = self
                .backoff
                .run("list_multipart_uploads", || async {
                    self.client
                        .list_multipart_uploads()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_key_marker(key_marker.clone())
                        .set_upload_id_marker(id_marker.clone())
                        .send()
                        .await
                        .map_err(store_error)
                })
                .await?;
            uploads.extend(out.uploads().iter().filter_map(|u| {
                Some(OpenUpload {
                    key: u.key()?.to_owned(),
                    upload_id: u.upload_id()?.to_owned(),
                    initiated: u.initiated().map(chrono_time).unwrap_or_default(),
                })
            }));
            if !out.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            id_marker = out.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        Ok(uploads)
    }

    async fn presign_upload(
        &self,
        spec: &UploadSpec<'_>,
        method: UploadMethod,
    ) -> Result<Upload, StoreError> {
        self.upload_form(spec, method).await
    }

    async fn presign_multipart(&self, spec: &UploadSpec<'_>) -> Result<Option<Upload>, StoreError> {
        crate::storage::s3_upload::presign_multipart(self, spec)
            .await
            .map(Some)
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: Option<&[UploadedPart]>,
    ) -> Result<(), StoreError> {
        crate::storage::s3_upload::complete_presigned(self, key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await;
        match res {
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => Ok(()),
            other => other.map(|_| ()).map_err(store_error),
        }
    }

    #[tracing::instrument(skip(self), fields(bucket = %self.bucket))]
    async fn multipart_bytes(&self, key: &ObjectKey, upload_id: &str) -> Result<u64, StoreError> {
        let mut bytes = 0u64;
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .backoff
                .run("list_parts", || async {
                    let res = self
                        .client
                        .list_parts()
                        .bucket(&self.bucket)
                        .key(key.as_str())
                        .upload_id(upload_id)
                        .set_part_number_marker(marker.clone())
                        .send()
                        .await;
                    match res {
                        Ok(page) => Ok(Some(page)),
                        // Completed or aborted: no part is held any more.
                        Err(e)
                            if e.as_service_error().and_then(|s| s.code())
                                == Some("NoSuchUpload") =>
                        {
                            Ok(None)
                        }
                        Err(e) => Err(store_error(e)),
                    }
                })
                .await?;
            let Some(page) = page else { return Ok(0) };
            bytes += page
                .parts()
                .iter()
                .map(|p| p.size().unwrap_or(0).max(0) as u64)
                .sum::<u64>();
            marker = page.next_part_number_marker;
            if page.is_truncated != Some(true) || marker.is_none() {
                break;
            }
        }
        Ok(bytes)
    }

    async fn presign_download(
        &self,
        key: &ObjectKey,
        filename: &Filename,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let disposition = crate::storage::content_disposition(filename.as_str(), inline);
        self.presign_get(key, Some(&disposition), expires_at).await
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        disposition: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let now = Utc::now();
        let mut query = vec![("x-id", "GetObject")];
        if let Some(d) = disposition {
            query.push(("response-content-disposition", d));
        }
        self.presign_url("GET", key, &query, &[], seconds_until(expires_at, now), now)
            .await
    }

    fn uri(&self, key: &ObjectKey) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The expiry the credential provider reports for the credentials this store signs with:
    /// a role's session (instance profile, ECS task role, web identity) ends, and every URL
    /// signed with it stops working then.
    async fn signing_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.credentials().await?.expires_at)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        tokio::time::timeout(
            Duration::from_secs(5),
            self.client.head_bucket().bucket(&self.bucket).send(),
        )
        .await
        .map_err(|_| StoreError::Unavailable("HeadBucket timed out".into()))?
        .map(|_| ())
        .map_err(store_error)
    }
}
