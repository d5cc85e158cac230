//! Bytes streamed through Cairn: `PUT /artifacts/{id}/content` for a pending artifact, and the
//! one-shot creates (binary preview, replay, audit). Constant memory, SHA-256 on the fly, the
//! first bytes checked against the declared type, multipart to S3 above the threshold (all in
//! `ObjectStore::put_stream`). A refused body changes nothing: the artifact stays `pending`.
//! So does a body that arrives whole when the artifact no longer fits the tenant's quota (a
//! limit lowered since it was admitted): its object is removed again.
use chrono::{Duration, Utc};
use entity::{artifact, blob};
use futures_util::{stream, StreamExt};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::settle::{insert_available, make_available};
use super::*;
use crate::domain::{catalog_time, media};
use crate::metering::quota;
use crate::storage::{BodyStream, PutError, UploadSpec};

fn put_error(e: PutError) -> Problem {
    match e {
        PutError::TooLarge { .. } => Problem::too_large(Code::PayloadTooLarge, e.to_string()),
        PutError::SizeMismatch { .. } => Problem::invalid(Code::SizeMismatch, e.to_string()),
        PutError::ChecksumMismatch => Problem::invalid(Code::ChecksumMismatch, e.to_string()),
        PutError::Exists => Problem::conflict(Code::ObjectExists, e.to_string()),
        PutError::Body(_) => Problem::invalid(Code::UploadInterrupted, e.to_string()),
        PutError::TooSlow(_) => Problem::TooSlow(e.to_string()),
        PutError::Store(s) => s.into(),
    }
}

/// Reads the first bytes of `body`, refuses it unless they are what `ct` claims, and gives back
/// the whole body.
async fn sniffed(ct: &ContentType, mut body: BodyStream) -> Result<BodyStream> {
    if !media::has_signature(ct) {
        return Ok(body);
    }
    let mut head: Vec<bytes::Bytes> = Vec::new();
    let mut have = 0;
    while have < media::SNIFF_LEN {
        match body.next().await {
            Some(Ok(chunk)) => {
                have += chunk.len();
                head.push(chunk);
            }
            Some(Err(e)) => return Err(put_error(PutError::body(&e))),
            None => break,
        }
    }
    let first: Vec<u8> = head
        .iter()
        .flat_map(|c| c.iter().copied())
        .take(media::SNIFF_LEN)
        .collect();
    if !media::sniff(ct, &first) {
        return Err(content_mismatch(ct));
    }
    Ok(Box::pin(stream::iter(head.into_iter().map(Ok)).chain(body)))
}

pub(super) fn content_mismatch(ct: &ContentType) -> Problem {
    Problem::invalid(
        Code::ContentMismatch,
        format!("the content is not {}", ct.essence()),
    )
}

fn spec<'a>(
    core: &Core,
    key: &'a ObjectKey,
    ct: &'a ContentType,
    size: SizeBytes,
    sha256: Option<Sha256>,
    visibility: Visibility,
) -> UploadSpec<'a> {
    UploadSpec {
        key,
        content_type: ct,
        size,
        sha256,
        cache_control: cache_control(visibility),
        expires_at: Utc::now() + Duration::seconds(core.presign_ttl_secs as i64),
    }
}

/// Streams the content of a pending artifact into the store and makes it available.
pub async fn upload_content(
    core: &Core,
    scope: &Scope,
    id: Uuid,
    body: BodyStream,
    content_length: Option<u64>,
) -> Result<artifact::Model> {
    scope.require_write()?;
    let a = get(core, scope, id).await?;
    if a.status != artifact::STATUS_PENDING {
        return Err(Problem::conflict(
            Code::NotPending,
            format!(
                "the artifact is {}; content is uploaded once, to a pending artifact",
                a.status
            ),
        ));
    }
    let declared = SizeBytes::new_unchecked(a.size_bytes.max(0) as u64);
    if let Some(n) = content_length {
        if n != declared.get() {
            return Err(Problem::invalid(
                Code::SizeMismatch,
                format!(
                    "Content-Length is {n}; the artifact was created with size_bytes {}",
                    declared.get()
                ),
            ));
        }
    }
    // Admitted at create; the limit may have dropped since. Asked again before the bytes come;
    // the settling transaction decides.
    quota::would_settle(&core.read, scope, a.size_bytes).await?;
    let blob = blob_of(core, &a).await?;
    let key = catalog_key(&blob.key)?;
    let ct = content_type_of(&a)?;
    let sha = a
        .sha256
        .as_deref()
        .map(Sha256::parse)
        .transpose()
        .map_err(|_| Problem::internal("bad sha256 in catalog"))?;
    if !set_status(
        core,
        id,
        artifact::STATUS_PENDING,
        artifact::STATUS_UPLOADING,
    )
    .await?
    {
        return Err(Problem::conflict(
            Code::NotPending,
            "another upload of this artifact is in progress",
        ));
    }
    let stored = async {
        let body = sniffed(&ct, body).await?;
        let spec = spec(core, &key, &ct, declared, sha, visibility_of(&a));
        core.store.put_stream(&spec, body).await.map_err(put_error)
    }
    .await;
    match stored {
        Ok(sha) => {
            let mut uploading = a.clone();
            uploading.status = artifact::STATUS_UPLOADING.into();
            let settled = make_available(
                core,
                scope,
                &uploading,
                &blob,
                sha,
                artifact::STATUS_UPLOADING,
                blob::STATE_PENDING,
            )
            .await;
            match settled {
                Err(e) if quota::is_refusal(&e) => {
                    // Removed while the artifact is still `uploading`, so that no new upload
                    // of it can start before the object is gone.
                    if let Err(err) = core.store.delete(&key).await {
                        tracing::warn!(error = %err, key = %key, "could not remove a refused object");
                    }
                    set_status(
                        core,
                        id,
                        artifact::STATUS_UPLOADING,
                        artifact::STATUS_PENDING,
                    )
                    .await?;
                    Err(e)
                }
                other => other,
            }
        }
        Err(e) => {
            // Nothing was stored: the client may try again.
            set_status(
                core,
                id,
                artifact::STATUS_UPLOADING,
                artifact::STATUS_PENDING,
            )
            .await?;
            Err(e)
        }
    }
}

async fn set_status(core: &Core, id: Uuid, from: &str, to: &str) -> Result<bool> {
    let res = artifact::Entity::update_many()
        .col_expr(artifact::Column::Status, Expr::value(to))
        .col_expr(
            artifact::Column::UpdatedAt,
            Expr::value(catalog_time(Utc::now())),
        )
        .filter(artifact::Column::ArtifactId.eq(id))
        .filter(artifact::Column::Status.eq(from))
        .exec(&core.db)
        .await?;
    core.changes.notify(id);
    Ok(res.rows_affected == 1)
}

/// Creates an artifact from a body streamed in the same request (binary preview, replay, audit).
/// Nothing is recorded unless the bytes were stored whole and verified.
pub async fn create_with_body(
    core: &Core,
    scope: &Scope,
    req: NewArtifact,
    body: BodyStream,
) -> Result<artifact::Model> {
    create::check_new(core, scope, &req).await?;
    let id = Uuid::now_v7();
    let key = artifact_key(scope, &req, id);
    let body = sniffed(&req.content_type, body).await?;
    let spec = spec(
        core,
        &key,
        &req.content_type,
        req.size,
        req.sha256,
        req.visibility,
    );
    let sha = core
        .store
        .put_stream(&spec, body)
        .await
        .map_err(put_error)?;
    match insert_available(core, scope, id, &req, &key, sha).await {
        Ok(a) => {
            crate::telemetry::record_outcome("artifact_create", "ok");
            Ok(a)
        }
        Err(e) => {
            if let Err(err) = core.store.delete(&key).await {
                tracing::warn!(error = %err, key = %key, "could not remove an unrecorded object");
            }
            Err(e)
        }
    }
}
