//! `POST /artifacts`: a pending artifact with a presigned upload, or, when the tenant+env already
//! stores the declared content, an artifact available at once on the shared blob. Each is
//! admitted against the tenant's quota in the transaction that writes it (`quota::Hold`); a
//! pending artifact holds its declared size until it fails, is abandoned or becomes available.
use chrono::{Duration, Utc};
use entity::{artifact, blob};
use sea_orm::{ActiveModelTrait, DatabaseTransaction, Set, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::ev;
use super::settle::record_created;
use super::*;
use crate::domain::{blobs, catalog_time, media};
use crate::{
    metering::quota::{self, Hold},
    storage::{Upload, UploadSpec},
    telemetry::record_outcome,
};

/// Checks what every create must satisfy before anything is written (the quota early: the
/// writing transaction admits).
pub(super) async fn check_new(core: &Core, scope: &Scope, req: &NewArtifact) -> Result<()> {
    req.kind.check_content_type(&req.content_type)?;
    check_common(core, scope, req).await
}

/// The checks of [`check_new`] that do not depend on the content.
async fn check_common(core: &Core, scope: &Scope, req: &NewArtifact) -> Result<()> {
    scope.require_write()?;
    if let Some(at) = req.expires_at {
        if at <= Utc::now() {
            return Err(Problem::invalid(
                Code::InvalidExpiresAt,
                "expires_at must be in the future",
            ));
        }
    }
    check_lineage(core, scope, &req.lineage.derived_from).await?;
    quota::would_admit(&core.read, scope, req.size.as_i64()).await
}

/// Admits a new artifact in `txn`, first thing: takes the tenant's quota hold and checks.
pub(super) async fn admit(
    txn: &DatabaseTransaction,
    scope: &Scope,
    req: &NewArtifact,
) -> Result<quota::Admitted> {
    Hold::take(txn, scope)
        .await?
        .admit(txn, scope, req.size.as_i64())
        .await
}

pub async fn create(
    core: &Core,
    scope: &Scope,
    req: NewArtifact,
) -> Result<(artifact::Model, Option<Upload>)> {
    check_new(core, scope, &req).await?;
    let now = catalog_time(Utc::now());
    if let Some(sha) = &req.sha256 {
        if let Some(existing) = blobs::find_stored(&core.read, scope, req.visibility, sha).await? {
            if existing.size_bytes != req.size.as_i64() {
                return Err(Problem::unprocessable(
                    Code::SizeMismatch,
                    format!(
                        "content with this sha256 is {} bytes, not {}",
                        existing.size_bytes,
                        req.size.get()
                    ),
                ));
            }
            // Known content serves only a kind it passes: bytes stored for a bundle or a raw
            // asset become an "image" only if they begin as one. Otherwise they are uploaded,
            // and checked, like any others.
            if first_bytes_fit(core, &req.content_type, &existing).await? {
                if let Some(a) = dedup(core, scope, &req, &existing, *sha).await? {
                    record_outcome("artifact_create", "deduplicated");
                    return Ok((a, None));
                }
            }
        }
    }

    let id = Uuid::now_v7();
    let key = artifact_key(scope, &req, id);
    let expires_at = crate::storage::url_expiry(
        &*core.store,
        now + Duration::seconds(core.presign_ttl_secs as i64),
    )
    .await?;
    let spec = UploadSpec {
        key: &key,
        content_type: &req.content_type,
        size: req.size,
        sha256: req.sha256,
        cache_control: cache_control(req.visibility),
        expires_at,
    };
    let multipart = if req.method == UploadMethod::Put && req.size.get() > core.multipart_threshold
    {
        core.store.presign_multipart(&spec).await?
    } else {
        None
    };
    let upload = match multipart {
        Some(u) => u,
        None => core.store.presign_upload(&spec, req.method).await?,
    };
    let upload_id = match &upload {
        Upload::Multipart { upload_id, .. } => Some(upload_id.clone()),
        _ => None,
    };
    let blob_id = Uuid::now_v7();
    let txn = core.db.begin().await?;
    let admitted = match admit(&txn, scope, &req).await {
        Ok(a) => a,
        Err(refusal) => {
            drop(txn);
            if let Some(upload_id) = &upload_id {
                if let Err(e) = core.store.abort_multipart(&key, upload_id).await {
                    tracing::warn!(error = %e, key = %key, "could not abort a refused multipart upload");
                }
            }
            return Err(refusal);
        }
    };
    blob_row(
        scope,
        blob_id,
        &req,
        &key,
        req.sha256,
        blob::STATE_PENDING,
        upload_id,
        now,
    )
    .insert(&txn)
    .await?;
    let a = row(
        scope,
        id,
        &req,
        Some(blob_id),
        &core.store.uri(&key),
        req.sha256,
        artifact::STATUS_PENDING,
        now,
    )
    .insert(&txn)
    .await?;
    record_created(&txn, scope, &a, now).await?;
    txn.commit().await?;
    admitted.warn();
    record_outcome("artifact_create", "ok");
    tracing::info!(tenant.id = %scope.tenant, artifact.id = %id, kind = %req.kind, method = upload.method(), "artifact created");
    Ok((a, Some(upload)))
}

/// Whether the stored object's first bytes are what `ct` claims (always, for types without a
/// signature to check).
async fn first_bytes_fit(core: &Core, ct: &ContentType, existing: &blob::Model) -> Result<bool> {
    if !media::has_signature(ct) {
        return Ok(true);
    }
    let head = core
        .store
        .read_prefix(&catalog_key(&existing.key)?, media::SNIFF_LEN)
        .await?;
    Ok(head.is_some_and(|h| media::sniff(ct, &h)))
}

/// A new artifact on an already stored blob; `None` when the blob stopped being stored.
async fn dedup(
    core: &Core,
    scope: &Scope,
    req: &NewArtifact,
    existing: &blob::Model,
    sha: Sha256,
) -> Result<Option<artifact::Model>> {
    let now = catalog_time(Utc::now());
    let txn = core.db.begin().await?;
    let admitted = admit(&txn, scope, req).await?;
    if !blobs::add_ref(&txn, existing.id, now).await? {
        return Ok(None);
    }
    let a = row(
        scope,
        Uuid::now_v7(),
        req,
        Some(existing.id),
        &core.store.uri(&catalog_key(&existing.key)?),
        Some(sha),
        artifact::STATUS_AVAILABLE,
        now,
    )
    .insert(&txn)
    .await?;
    record_created(&txn, scope, &a, now).await?;
    let mut e = artifact_event(ev::DEDUPLICATED, scope, &a, now);
    e.detail = json!({ "blob_id": existing.id, "bytes_saved": existing.size_bytes });
    e.record(&txn).await?;
    count(&txn, scope, now, &live_delta(&a).dedup(a.size_bytes)).await?;
    txn.commit().await?;
    admitted.warn();
    Ok(Some(a))
}

/// A preview that points at a render elsewhere (`uri`) instead of holding bytes: available at once.
pub async fn create_render_ref(
    core: &Core,
    scope: &Scope,
    req: NewArtifact,
    uri: String,
) -> Result<artifact::Model> {
    check_common(core, scope, &req).await?;
    let now = catalog_time(Utc::now());
    let txn = core.db.begin().await?;
    let admitted = admit(&txn, scope, &req).await?;
    let mut m = row(
        scope,
        Uuid::now_v7(),
        &req,
        None,
        &uri,
        None,
        artifact::STATUS_AVAILABLE,
        now,
    );
    m.render_ref = Set(Some(uri));
    let a = m.insert(&txn).await?;
    record_created(&txn, scope, &a, now).await?;
    count(&txn, scope, now, &live_delta(&a)).await?;
    txn.commit().await?;
    admitted.warn();
    record_outcome("artifact_create", "ok");
    Ok(a)
}
