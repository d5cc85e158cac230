//! Multipart uploads the client sends itself: part URLs signed for each part's exact length,
//! and their completion (with the client's parts or those the store lists).
use aws_sdk_s3::{
    error::ProvideErrorMetadata,
    types::{CompletedMultipartUpload, CompletedPart},
};

use super::{create, part_size};
use crate::{
    storage::{
        s3::{store_error, S3Store},
        PartUrl, StoreError, Upload, UploadSpec, UploadedPart,
    },
    values::ObjectKey,
};

/// A multipart upload for the client: part URLs signed for each part's exact length.
pub async fn presign_multipart(
    store: &S3Store,
    spec: &UploadSpec<'_>,
) -> Result<Upload, StoreError> {
    let size = spec.size.get();
    let part_size = part_size(size, store.multipart_threshold());
    let upload_id = create(store, spec).await?;
    let now = chrono::Utc::now();
    let ttl = (spec.expires_at - now).num_seconds().max(1) as u64;
    let count = size.div_ceil(part_size).max(1);
    let mut parts = Vec::with_capacity(count as usize);
    for n in 1..=count {
        let len = part_size.min(size - (n - 1) * part_size).to_string();
        let number = n.to_string();
        let url = store
            .presign_url(
                "PUT",
                spec.key,
                &[
                    ("x-id", "UploadPart"),
                    ("partNumber", &number),
                    ("uploadId", &upload_id),
                ],
                &[("content-length", &len)],
                ttl,
                now,
            )
            .await?;
        parts.push(PartUrl {
            part_number: n as i32,
            url,
        });
    }
    Ok(Upload::Multipart {
        upload_id,
        part_size,
        parts,
    })
}

/// Completes a client's multipart upload with its parts, or with those the store lists.
/// A completion whose response was lost (the upload is gone, the object is there) succeeds.
pub async fn complete_presigned(
    store: &S3Store,
    key: &ObjectKey,
    upload_id: &str,
    parts: Option<&[UploadedPart]>,
) -> Result<(), StoreError> {
    let parts: Vec<CompletedPart> = match parts {
        Some(p) => p
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.part_number)
                    .e_tag(&p.etag)
                    .build()
            })
            .collect(),
        None => {
            let mut out = vec![];
            let mut marker: Option<String> = None;
            loop {
                let page = store
                    .client()
                    .list_parts()
                    .bucket(store.bucket())
                    .key(key.as_str())
                    .upload_id(upload_id)
                    .set_part_number_marker(marker.clone())
                    .send()
                    .await;
                let page = match page {
                    Err(e)
                        if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchUpload") =>
                    {
                        return finished_already(store, key).await
                    }
                    other => other.map_err(store_error)?,
                };
                out.extend(page.parts().iter().map(|p| {
                    CompletedPart::builder()
                        .set_part_number(p.part_number)
                        .set_e_tag(p.e_tag.clone())
                        .build()
                }));
                if page.is_truncated() != Some(true) {
                    break;
                }
                marker = page.next_part_number_marker;
            }
            out
        }
    };
    if parts.is_empty() {
        return Err(StoreError::Other("no part was uploaded".into()));
    }
    let res = store
        .client()
        .complete_multipart_upload()
        .bucket(store.bucket())
        .key(key.as_str())
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchUpload") => {
            finished_already(store, key).await
        }
        Err(e) => Err(store_error(e)),
    }
}

async fn finished_already(store: &S3Store, key: &ObjectKey) -> Result<(), StoreError> {
    use crate::storage::ObjectStore;
    match store.head(key).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::Other(
            "the multipart upload no longer exists".into(),
        )),
    }
}
