//! Uploads streamed through Cairn into S3: one PutObject up to the multipart threshold, above it a
//! multipart upload whose parts go out with bounded concurrency (so memory stays bounded whatever
//! the size), each retried with backoff; the upload is aborted when it cannot finish.
use std::sync::Arc;

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::Digest;
use tokio::{sync::Semaphore, task::JoinSet};

use super::{
    s3::{store_error, S3Store},
    BodyStream, PutError, StoreError, UploadSpec,
};
use crate::values::Sha256;

mod presigned;

pub use presigned::{complete_presigned, presign_multipart};

/// Parts in flight at once; memory is about `(PARTS_IN_FLIGHT + 1) * part size`.
pub const PARTS_IN_FLIGHT: usize = 4;
/// S3 allows at most 10,000 parts.
const MAX_PARTS: u64 = 10_000;

/// The part size for `size` bytes: the threshold, grown (in MiB steps) when the object would
/// otherwise need more than 10,000 parts.
pub fn part_size(size: u64, threshold: u64) -> u64 {
    let min = size.div_ceil(MAX_PARTS);
    let mib = 1024 * 1024;
    threshold.max(min.div_ceil(mib) * mib)
}

/// Reads a body in exact pieces, keeping what a chunk carried past a piece for the next one.
struct Exact {
    body: BodyStream,
    carry: Bytes,
    declared: u64,
    received: u64,
}

impl Exact {
    async fn take(&mut self, n: u64) -> Result<Bytes, PutError> {
        let mut out = BytesMut::with_capacity(n as usize);
        while (out.len() as u64) < n {
            if self.carry.is_empty() {
                match self.body.next().await {
                    Some(Ok(chunk)) => self.carry = chunk,
                    Some(Err(e)) => return Err(PutError::body(&e)),
                    None => {
                        return Err(PutError::SizeMismatch {
                            declared: self.declared,
                            received: self.received + out.len() as u64,
                        })
                    }
                }
            }
            let want = (n as usize - out.len()).min(self.carry.len());
            out.extend_from_slice(&self.carry.split_to(want));
        }
        self.received += n;
        Ok(out.freeze())
    }

    /// After the declared bytes the body must end.
    async fn finish(&mut self) -> Result<(), PutError> {
        if !self.carry.is_empty() {
            return Err(PutError::TooLarge {
                declared: self.declared,
            });
        }
        while let Some(chunk) = self.body.next().await {
            match chunk {
                Ok(c) if c.is_empty() => continue,
                Ok(_) => {
                    return Err(PutError::TooLarge {
                        declared: self.declared,
                    })
                }
                Err(e) => return Err(PutError::body(&e)),
            }
        }
        Ok(())
    }
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

pub async fn put_stream(
    store: &S3Store,
    spec: &UploadSpec<'_>,
    body: BodyStream,
) -> Result<Sha256, PutError> {
    let size = spec.size.get();
    let mut body = Exact {
        body,
        carry: Bytes::new(),
        declared: size,
        received: 0,
    };
    if size <= store.multipart_threshold() {
        let bytes = body.take(size).await?;
        body.finish().await?;
        let sha = Sha256::from_bytes(sha2::Sha256::digest(&bytes).into());
        if spec.sha256.is_some_and(|e| e != sha) {
            return Err(PutError::ChecksumMismatch);
        }
        put_single(store, spec, bytes, sha).await?;
        return Ok(sha);
    }
    multipart(store, spec, body).await
}

async fn put_single(
    store: &S3Store,
    spec: &UploadSpec<'_>,
    bytes: Bytes,
    sha: Sha256,
) -> Result<(), PutError> {
    let res = store
        .backoff()
        .run("put_object", || {
            let mut req = store
                .client()
                .put_object()
                .bucket(store.bucket())
                .key(spec.key.as_str())
                .content_type(spec.content_type.as_str())
                .cache_control(spec.cache_control)
                .content_length(bytes.len() as i64)
                .checksum_sha256(b64(sha.bytes()))
                .body(ByteStream::from(bytes.clone()));
            if store.conditional_writes() {
                req = req.if_none_match("*");
            }
            async move { req.send().await.map(|_| ()).map_err(store_error) }
        })
        .await;
    match res {
        Err(StoreError::Other(d)) if d.starts_with("PreconditionFailed") => Err(PutError::Exists),
        other => Ok(other?),
    }
}

/// Opens a multipart upload (content type and cache control fixed at creation).
pub(super) async fn create(store: &S3Store, spec: &UploadSpec<'_>) -> Result<String, StoreError> {
    store
        .backoff()
        .run("create_multipart_upload", || async {
            store
                .client()
                .create_multipart_upload()
                .bucket(store.bucket())
                .key(spec.key.as_str())
                .content_type(spec.content_type.as_str())
                .cache_control(spec.cache_control)
                .send()
                .await
                .map_err(store_error)
        })
        .await?
        .upload_id
        .ok_or_else(|| StoreError::Other("CreateMultipartUpload returned no upload id".into()))
}

async fn multipart(
    store: &S3Store,
    spec: &UploadSpec<'_>,
    mut body: Exact,
) -> Result<Sha256, PutError> {
    let size = spec.size.get();
    let part_size = part_size(size, store.multipart_threshold());
    let upload_id = create(store, spec).await?;

    let result = upload_parts(store, spec, &mut body, &upload_id, part_size).await;
    match result {
        Ok(sha) => Ok(sha),
        Err(e) => {
            let abort = store
                .client()
                .abort_multipart_upload()
                .bucket(store.bucket())
                .key(spec.key.as_str())
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(a) = abort {
                // The lifecycle sweep aborts what the store still lists.
                tracing::warn!(key = %spec.key, upload_id, error = %store_error(a), "could not abort a failed multipart upload");
            }
            Err(e)
        }
    }
}

async fn upload_parts(
    store: &S3Store,
    spec: &UploadSpec<'_>,
    body: &mut Exact,
    upload_id: &str,
    part_size: u64,
) -> Result<Sha256, PutError> {
    let size = spec.size.get();
    let mut hasher = sha2::Sha256::new();
    let permits = Arc::new(Semaphore::new(PARTS_IN_FLIGHT));
    let mut tasks: JoinSet<Result<CompletedPart, StoreError>> = JoinSet::new();
    let mut parts = Vec::new();
    let mut part_number = 1i32;
    let mut sent = 0u64;
    while sent < size {
        // Wait for a free slot before reading more: this is what bounds memory.
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        // Collect what finished meanwhile, so a failed part stops the upload early.
        while let Some(done) = tasks.try_join_next() {
            parts.push(done.map_err(|e| StoreError::Other(e.to_string()))??);
        }
        let n = part_size.min(size - sent);
        let bytes = body.take(n).await?;
        hasher.update(&bytes);
        sent += n;
        let (client, bucket, key, upload_id, backoff) = (
            store.client().clone(),
            store.bucket().to_owned(),
            spec.key.to_string(),
            upload_id.to_owned(),
            store.backoff(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            let out = backoff
                .run("upload_part", || {
                    let req = client
                        .upload_part()
                        .bucket(&bucket)
                        .key(&key)
                        .upload_id(&upload_id)
                        .part_number(part_number)
                        .content_length(bytes.len() as i64)
                        .body(ByteStream::from(bytes.clone()));
                    async move { req.send().await.map_err(store_error) }
                })
                .await?;
            Ok(CompletedPart::builder()
                .part_number(part_number)
                .set_e_tag(out.e_tag)
                .build())
        });
        part_number += 1;
    }
    body.finish().await?;
    while let Some(done) = tasks.join_next().await {
        parts.push(done.map_err(|e| StoreError::Other(e.to_string()))??);
    }
    let sha = Sha256::from_bytes(hasher.finalize().into());
    if spec.sha256.is_some_and(|e| e != sha) {
        return Err(PutError::ChecksumMismatch);
    }
    parts.sort_by_key(|p| p.part_number);
    if parts.len() as i32 != part_number - 1 {
        return Err(StoreError::Other(format!(
            "{} of {} parts uploaded",
            parts.len(),
            part_number - 1
        ))
        .into());
    }
    let completed = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    store
        .backoff()
        .run("complete_multipart_upload", || async {
            store
                .client()
                .complete_multipart_upload()
                .bucket(store.bucket())
                .key(spec.key.as_str())
                .upload_id(upload_id)
                .multipart_upload(completed.clone())
                .send()
                .await
                .map_err(store_error)
        })
        .await?;
    Ok(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_the_threshold_and_the_part_limit() {
        let mib = 1024 * 1024;
        assert_eq!(part_size(50 * mib, 8 * mib), 8 * mib);
        assert_eq!(part_size(500 * 1024 * mib, 8 * mib), 52 * mib);
        assert!(500 * 1024 * mib / part_size(500 * 1024 * mib, 8 * mib) <= MAX_PARTS);
    }

    #[tokio::test]
    async fn exact_reads_split_chunks_and_detect_wrong_sizes() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defgh")),
        ];
        let mut r = Exact {
            body: Box::pin(futures_util::stream::iter(chunks)),
            carry: Bytes::new(),
            declared: 8,
            received: 0,
        };
        assert_eq!(r.take(2).await.unwrap().as_ref(), b"ab");
        assert_eq!(r.take(4).await.unwrap().as_ref(), b"cdef");
        assert!(matches!(r.finish().await, Err(PutError::TooLarge { .. })));
        let mut short = Exact {
            body: Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(
                b"ab",
            ))])),
            carry: Bytes::new(),
            declared: 3,
            received: 0,
        };
        assert!(matches!(
            short.take(3).await,
            Err(PutError::SizeMismatch { received: 2, .. })
        ));
    }
}
