//! Presigning uploads, and dedup of content the tenant+env already stores. Both are admitted
//! against the tenant's quota in the transaction that writes the new asset (`quota::Hold`); a
//! pending upload holds its declared size until it fails, is abandoned or registers.
use chrono::{DateTime, Duration, Utc};
use entity::{blob, raw_asset};
use futures_util::future::BoxFuture;
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TryIntoModel};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{catalog_time, ObjectKey};
use crate::{
    auth::Scope,
    core::{Batch, Core, Work},
    events::kind,
    metering::quota::{self, Admitted, Hold},
    problem::{Code, Problem, Result},
    storage::{Upload, UploadMethod, UploadSpec, PRIVATE_IMMUTABLE},
    telemetry::record_outcome,
    usage::{self, Delta},
};

pub async fn presign_upload(core: &Core, scope: &Scope, req: PresignUpload) -> Result<Presigned> {
    scope.require_write()?;
    quota::would_admit(&core.read, scope, req.size.as_i64()).await?;
    let now = catalog_time(Utc::now());
    if let Some(sha) = &req.sha256 {
        if let Some(existing) = find_stored_blob(&core.read, scope, sha).await? {
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
            if let Some(asset) = dedup(core, scope, &req, &existing, now).await? {
                record_outcome("presign_upload", "deduplicated");
                return Ok(Presigned::Deduplicated(Box::new(asset)));
            }
            // The blob stopped being stored meanwhile: upload as usual.
        }
    }

    let asset_id = Uuid::now_v7();
    let key = ObjectKey::raw_asset(&scope.tenant, &scope.env, asset_id, &req.filename);
    // On a role the URL dies with the session: the answer says when that is.
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
        cache_control: PRIVATE_IMMUTABLE,
        expires_at,
    };
    // Large files go up in parts where the store wants that (S3); the local store takes any size.
    let multipart = if req.method == UploadMethod::Put && req.size.get() > core.multipart_threshold
    {
        core.store.presign_multipart(&spec).await?
    } else {
        None
    };
    let upload = match multipart {
        Some(upload) => upload,
        None => core.store.presign_upload(&spec, req.method).await?,
    };
    let upload_id = match &upload {
        Upload::Multipart { upload_id, .. } => Some(upload_id.clone()),
        _ => None,
    };
    let uri = core.store.uri(&key);
    let blob_id = Uuid::now_v7();
    let blob = blob::ActiveModel {
        id: Set(blob_id),
        tenant_id: Set(scope.tenant.to_string()),
        env: Set(scope.env.to_string()),
        visibility: Set(blob::VISIBILITY_PRIVATE.into()),
        key: Set(key.to_string()),
        sha256: Set(req.sha256.map(|s| s.to_hex())),
        size_bytes: Set(req.size.as_i64()),
        content_type: Set(req.content_type.to_string()),
        state: Set(blob::STATE_PENDING.into()),
        ref_count: Set(1),
        upload_id: Set(upload_id.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let asset = new_asset(
        scope,
        asset_id,
        blob_id,
        &uri,
        &req,
        raw_asset::STATUS_PENDING,
        now,
    );
    let detail = json!({
        "key": key.as_str(),
        "method": upload.method(),
        "size_bytes": req.size.get(),
        "content_type": req.content_type.as_str(),
        "expires_at": expires_at,
    });
    let written = core
        .writer
        .write(PendingUpload {
            scope: scope.clone(),
            blob,
            asset: asset.try_into_model()?,
            detail,
            now,
        })
        .await;
    let admitted = match written {
        Ok(admitted) => admitted,
        Err(refusal) => {
            if let Some(upload_id) = &upload_id {
                if let Err(e) = core.store.abort_multipart(&key, upload_id).await {
                    tracing::warn!(error = %e, key = %key, "could not abort a refused multipart upload");
                }
            }
            return Err(refusal);
        }
    };
    admitted.warn();
    record_outcome("presign_upload", "ok");
    tracing::info!(tenant.id = %scope.tenant, asset.id = %asset_id, size_bytes = req.size.get(), "upload presigned");
    Ok(Presigned::Upload {
        asset_id,
        key,
        uri,
        upload,
        expires_at,
    })
}

fn new_asset(
    scope: &Scope,
    asset_id: Uuid,
    blob_id: Uuid,
    uri: &str,
    req: &PresignUpload,
    status: &str,
    now: DateTime<Utc>,
) -> raw_asset::ActiveModel {
    raw_asset::ActiveModel {
        asset_id: Set(asset_id),
        tenant_id: Set(scope.tenant.to_string()),
        env: Set(scope.env.to_string()),
        uri: Set(uri.to_owned()),
        blob_id: Set(blob_id),
        filename: Set(req.filename.to_string()),
        sha256: Set(req.sha256.map(|s| s.to_hex())),
        size_bytes: Set(req.size.as_i64()),
        content_type: Set(req.content_type.to_string()),
        captured_at: Set(None),
        imported_at: Set(None),
        source_ref: Set(None),
        capture_location: Set(None),
        metadata: Set(json!({})),
        pii_flags: Set(json!([])),
        train_ok: Set(false),
        status: Set(status.to_owned()),
        sealed: Set(false),
        created_by: Set(scope.user.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Registers a new asset on an already stored blob. `None` when the blob stopped being stored.
async fn dedup(
    core: &Core,
    scope: &Scope,
    req: &PresignUpload,
    existing: &blob::Model,
    now: DateTime<Utc>,
) -> Result<Option<raw_asset::Model>> {
    let asset_id = Uuid::now_v7();
    let uri = core.store.uri(&catalog_key(&existing.key)?);
    let asset = new_asset(
        scope,
        asset_id,
        existing.id,
        &uri,
        req,
        raw_asset::STATUS_REGISTERED,
        now,
    )
    .try_into_model()?;
    let work = Dedup {
        scope: scope.clone(),
        blob_id: existing.id,
        blob_size: existing.size_bytes,
        asset,
        now,
    };
    let Some((admitted, asset)) = core.writer.write(work).await? else {
        return Ok(None);
    };
    admitted.warn();
    tracing::info!(tenant.id = %scope.tenant, asset.id = %asset_id, blob.id = %existing.id, "deduplicated at presign");
    Ok(Some(asset))
}

/// The rows of a presigned upload: its pending blob and asset, admitted against the quota, and
/// its event.
struct PendingUpload {
    scope: Scope,
    blob: blob::ActiveModel,
    asset: raw_asset::Model,
    detail: serde_json::Value,
    now: DateTime<Utc>,
}

impl Work for PendingUpload {
    type Output = Admitted;

    fn run<'t>(&'t self, batch: &'t Batch<'t>) -> BoxFuture<'t, Result<Admitted>> {
        Box::pin(async move {
            let txn = batch.txn();
            let admitted = Hold::take(txn, &self.scope)
                .await?
                .admit(txn, &self.scope, self.asset.size_bytes)
                .await?;
            // Nobody reads the rows back: no RETURNING.
            blob::Entity::insert(self.blob.clone())
                .exec_without_returning(txn)
                .await?;
            raw_asset::Entity::insert(raw_asset::ActiveModel::from(self.asset.clone()).reset_all())
                .exec_without_returning(txn)
                .await?;
            let mut ev = asset_event(
                kind::RAW_UPLOAD_PRESIGNED,
                &self.scope,
                &self.asset,
                self.now,
            );
            ev.detail = self.detail.clone();
            batch.record(ev);
            Ok(admitted)
        })
    }
}

/// A new asset on an already stored blob: admitted, the blob's reference added, the asset live
/// and counted. `None` when the blob stopped being stored.
struct Dedup {
    scope: Scope,
    blob_id: Uuid,
    blob_size: i64,
    asset: raw_asset::Model,
    now: DateTime<Utc>,
}

impl Work for Dedup {
    type Output = Option<(Admitted, raw_asset::Model)>;

    fn run<'t>(&'t self, batch: &'t Batch<'t>) -> BoxFuture<'t, Result<Self::Output>> {
        Box::pin(async move {
            let (txn, scope, asset, now) = (batch.txn(), &self.scope, &self.asset, self.now);
            let admitted = Hold::take(txn, scope)
                .await?
                .admit(txn, scope, asset.size_bytes)
                .await?;
            if !add_ref(txn, self.blob_id, now).await? {
                return Ok(None);
            }
            raw_asset::Entity::insert(raw_asset::ActiveModel::from(asset.clone()).reset_all())
                .exec_without_returning(txn)
                .await?;
            let mut ev = asset_event(kind::RAW_DEDUPLICATED, scope, asset, now);
            ev.detail = json!({ "blob_id": self.blob_id, "bytes_saved": self.blob_size });
            batch.record(ev);
            let delta = Delta::live(None, asset.size_bytes).dedup(asset.size_bytes);
            usage::record(txn, scope.tenant.as_str(), scope.env.as_str(), now, &delta).await?;
            Ok(Some((admitted, asset.clone())))
        })
    }
}
