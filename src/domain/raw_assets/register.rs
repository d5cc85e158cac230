//! Registration: verify the stored object, then seal the asset; repeats are idempotent. The
//! asset becomes live only if it still fits the tenant's quota (checked under `quota::Hold` in
//! the sealing transaction); if not, it stays pending with its object, for a later try.
use chrono::{DateTime, Utc};
use entity::{blob, raw_asset};
use futures_util::future::BoxFuture;
use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{blobs, catalog_time, ObjectKey};
use crate::{
    auth::Scope,
    core::{Batch, Core, Work},
    events::kind,
    metering::quota::{is_refusal, Hold},
    problem::{Code, Problem, Result},
    storage::StoreError,
    telemetry::record_outcome,
    usage::{self, Delta},
};

pub async fn register(core: &Core, scope: &Scope, req: Register) -> Result<raw_asset::Model> {
    scope.require_write()?;
    let asset = get(core, scope, req.asset_id).await?;
    match asset.status.as_str() {
        raw_asset::STATUS_PENDING => verify_and_register(core, scope, asset, &req).await,
        raw_asset::STATUS_REGISTERED => already_registered(core, scope, asset, &req).await,
        _ => Err(failed_asset()),
    }
}

fn same_facts(a: &raw_asset::Model, req: &Register) -> bool {
    a.sha256.as_deref() == Some(req.sha256.to_hex().as_str())
        && a.size_bytes == req.size.as_i64()
        && a.content_type == req.content_type.as_str()
}

fn same_descriptive(a: &raw_asset::Model, d: &Descriptive) -> bool {
    fn eq<T: PartialEq>(stated: &Option<T>, stored: &T) -> bool {
        stated.as_ref().is_none_or(|s| s == stored)
    }
    eq(&d.captured_at.map(Some), &a.captured_at)
        && eq(&d.imported_at.map(Some), &a.imported_at)
        && eq(&d.source_ref.clone().map(Some), &a.source_ref)
        && eq(&d.capture_location.clone().map(Some), &a.capture_location)
        && eq(&d.metadata, &a.metadata)
        && eq(&d.pii_flags, &a.pii_flags)
        && eq(&d.train_ok, &a.train_ok)
}

/// Registered assets are immutable: the same facts again are a no-op, different facts a 409.
/// The one exception is an asset deduplicated at presign, whose first register call supplies the
/// descriptive fields it could not have had.
async fn already_registered(
    core: &Core,
    scope: &Scope,
    asset: raw_asset::Model,
    req: &Register,
) -> Result<raw_asset::Model> {
    if !same_facts(&asset, req) {
        return Err(Problem::conflict(
            Code::AssetConflict,
            "the asset is registered with a different sha256, size or content type",
        ));
    }
    if asset.sealed {
        return if same_descriptive(&asset, &req.descriptive) {
            Ok(asset)
        } else {
            Err(Problem::conflict(
                Code::AssetConflict,
                "the asset is registered with different descriptive fields",
            ))
        };
    }
    let now = catalog_time(Utc::now());
    let txn = core.db.begin().await?;
    let updated = seal(
        &txn,
        &asset,
        None,
        &req.descriptive,
        raw_asset::STATUS_REGISTERED,
        now,
    )
    .await?;
    let Some(updated) = updated else {
        // Sealed concurrently: answer as for any sealed asset.
        drop(txn);
        let fresh = get(core, scope, asset.asset_id).await?;
        return Box::pin(already_registered(core, scope, fresh, req)).await;
    };
    asset_event(kind::RAW_REGISTERED, scope, &updated, now)
        .record(&txn)
        .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Applies the descriptive fields and seals the asset, if it is still `from_status` and unsealed.
async fn seal(
    db: &impl ConnectionTrait,
    asset: &raw_asset::Model,
    new_blob: Option<(Uuid, &str)>,
    d: &Descriptive,
    from_status: &str,
    now: DateTime<Utc>,
) -> Result<Option<raw_asset::Model>, DbErr> {
    let mut m = asset.clone();
    m.captured_at = d.captured_at.or(m.captured_at);
    m.imported_at = Some(d.imported_at.or(m.imported_at).unwrap_or(now));
    m.source_ref = d.source_ref.clone().or(m.source_ref);
    m.capture_location = d.capture_location.clone().or(m.capture_location);
    m.metadata = d.metadata.clone().unwrap_or(m.metadata);
    m.pii_flags = d.pii_flags.clone().unwrap_or(m.pii_flags);
    m.train_ok = d.train_ok.unwrap_or(m.train_ok);
    if let Some((blob_id, uri)) = new_blob {
        m.blob_id = blob_id;
        m.uri = uri.to_owned();
    }
    m.status = raw_asset::STATUS_REGISTERED.into();
    m.sealed = true;
    m.updated_at = now;
    let res = raw_asset::Entity::update_many()
        .col_expr(raw_asset::Column::CapturedAt, Expr::value(m.captured_at))
        .col_expr(raw_asset::Column::ImportedAt, Expr::value(m.imported_at))
        .col_expr(
            raw_asset::Column::SourceRef,
            Expr::value(m.source_ref.clone()),
        )
        .col_expr(
            raw_asset::Column::CaptureLocation,
            Expr::value(m.capture_location.clone()),
        )
        .col_expr(raw_asset::Column::Metadata, Expr::value(m.metadata.clone()))
        .col_expr(
            raw_asset::Column::PiiFlags,
            Expr::value(m.pii_flags.clone()),
        )
        .col_expr(raw_asset::Column::TrainOk, Expr::value(m.train_ok))
        .col_expr(raw_asset::Column::Sha256, Expr::value(m.sha256.clone()))
        .col_expr(raw_asset::Column::BlobId, Expr::value(m.blob_id))
        .col_expr(raw_asset::Column::Uri, Expr::value(m.uri.clone()))
        .col_expr(raw_asset::Column::Status, Expr::value(m.status.clone()))
        .col_expr(raw_asset::Column::Sealed, Expr::value(true))
        .col_expr(raw_asset::Column::UpdatedAt, Expr::value(now))
        .filter(raw_asset::Column::AssetId.eq(asset.asset_id))
        .filter(raw_asset::Column::Status.eq(from_status))
        .filter(raw_asset::Column::Sealed.eq(false))
        .exec(db)
        .await?;
    Ok((res.rows_affected == 1).then_some(m))
}

async fn verify_and_register(
    core: &Core,
    scope: &Scope,
    asset: raw_asset::Model,
    req: &Register,
) -> Result<raw_asset::Model> {
    let blob = blob::Entity::find_by_id(asset.blob_id)
        .one(&core.read)
        .await?
        .ok_or_else(|| Problem::internal("asset without blob"))?;
    let key = catalog_key(&blob.key)?;
    if let Some(upload_id) = &blob.upload_id {
        match core
            .store
            .complete_multipart(&key, upload_id, req.parts.as_deref())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Other(detail)) => {
                let detail = format!("the multipart upload cannot be completed: {detail}");
                fail(
                    core,
                    scope,
                    &asset,
                    &blob,
                    &key,
                    Code::UploadIncomplete,
                    &detail,
                )
                .await?;
                record_outcome("register", "failed");
                return Err(Problem::unprocessable(Code::UploadIncomplete, detail));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stored = core.store.facts(&key).await?;
    let mismatch = match stored {
        None => Some((
            Code::ObjectMissing,
            "no object was uploaded for this asset".to_owned(),
        )),
        Some((size, _)) if size != req.size.get() => Some((
            Code::SizeMismatch,
            format!("the stored object is {size} bytes, not {}", req.size.get()),
        )),
        Some((_, sha)) if sha != req.sha256 => Some((
            Code::ChecksumMismatch,
            format!("the stored object's sha256 is {sha}, not {}", req.sha256),
        )),
        Some(_) if asset.content_type != req.content_type.as_str() => Some((
            Code::ContentTypeMismatch,
            format!("the upload was presigned as `{}`", asset.content_type),
        )),
        Some(_) => None,
    };
    if let Some((code, detail)) = mismatch {
        fail(core, scope, &asset, &blob, &key, code, &detail).await?;
        record_outcome("register", "failed");
        return Err(Problem::unprocessable(code, detail));
    }

    // Verified. Commit, pointing the asset at an already stored blob of the same content if the
    // tenant+env has one (two uploads of one file raced, or the client skipped the sha256).
    let mut asset = asset;
    asset.sha256 = Some(req.sha256.to_hex());
    for _ in 0..3 {
        let work = Seal {
            scope: scope.clone(),
            asset: asset.clone(),
            blob_id: blob.id,
            sha256: req.sha256,
            size: req.size.get(),
            descriptive: req.descriptive.clone(),
            store: core.store.clone(),
            now: catalog_time(Utc::now()),
        };
        let (registered, duplicate) = match core.writer.write(work).await {
            Ok(done) => done,
            // The content or the asset changed state meanwhile; nothing was written.
            Err(Problem::Contention(_)) => {
                let fresh = get(core, scope, asset.asset_id).await?;
                match fresh.status.as_str() {
                    raw_asset::STATUS_PENDING => continue,
                    // Registered concurrently by another call: answer as a repeat registration.
                    raw_asset::STATUS_REGISTERED => {
                        return already_registered(core, scope, fresh, req).await
                    }
                    _ => return Err(failed_asset()),
                }
            }
            Err(refusal) if is_refusal(&refusal) => {
                // Rolled back: the asset stays pending, its object stays for a later try.
                record_outcome("register", "quota_exceeded");
                return Err(refusal);
            }
            Err(e) => return Err(e),
        };
        if duplicate {
            // The catalog no longer references our copy. If this delete is lost, the orphan
            // check of the lifecycle sweep finds the object.
            if let Err(e) = core.store.delete(&key).await {
                tracing::warn!(error = %e, key = %key, "could not remove a duplicate object");
            }
        }
        record_outcome("register", "ok");
        tracing::info!(tenant.id = %scope.tenant, asset.id = %registered.asset_id, "asset registered");
        return Ok(registered);
    }
    Err(Problem::contention(
        "the asset's content changed state repeatedly; retry",
    ))
}

fn failed_asset() -> Problem {
    Problem::conflict(
        Code::AssetFailed,
        "this asset failed verification; presign a new upload",
    )
}

/// The sealing of a verified upload: the asset registered on its blob, or on the tenant+env's
/// stored blob of the same content (its own pending blob then removed), admitted against the
/// quota, counted, with its events. Answers the registered asset and whether it was a
/// duplicate; 409 `contention`, with nothing written, when the content or the asset changed
/// state meanwhile.
struct Seal {
    scope: Scope,
    /// The pending asset, its sha256 set.
    asset: raw_asset::Model,
    /// The asset's own (pending) blob.
    blob_id: Uuid,
    sha256: Sha256,
    /// The size the registration states (verified against the stored object).
    size: u64,
    descriptive: Descriptive,
    store: std::sync::Arc<dyn crate::storage::ObjectStore>,
    now: DateTime<Utc>,
}

impl Work for Seal {
    type Output = (raw_asset::Model, bool);

    fn run<'t>(&'t self, batch: &'t Batch<'t>) -> BoxFuture<'t, Result<Self::Output>> {
        Box::pin(async move {
            let (txn, scope, now) = (batch.txn(), &self.scope, self.now);
            let changed = || Problem::contention("the asset's content changed state; retry");
            let hold = Hold::take(txn, scope).await?;
            let existing = find_stored_blob(txn, scope, &self.sha256).await?;
            let mut newly_stored = false;
            let duplicate_of = match existing {
                Some(e) if e.id != self.blob_id => {
                    if !add_ref(txn, e.id, now).await? {
                        return Err(changed());
                    }
                    Some(e)
                }
                _ => {
                    let res = blobs::mark_stored(
                        txn,
                        self.blob_id,
                        blob::STATE_PENDING,
                        &self.sha256,
                        now,
                    )
                    .await;
                    match res {
                        Err(e)
                            if matches!(
                                e.sql_err(),
                                Some(SqlErr::UniqueConstraintViolation(_))
                            ) =>
                        {
                            return Err(changed())
                        }
                        Err(e) => return Err(e.into()),
                        Ok(stored) => {
                            newly_stored = stored;
                            None
                        }
                    }
                }
            };
            let new_blob = match &duplicate_of {
                Some(e) => Some((e.id, self.store.uri(&catalog_key(&e.key)?))),
                None => None,
            };
            let registered = seal(
                txn,
                &self.asset,
                new_blob.as_ref().map(|(id, uri)| (*id, uri.as_str())),
                &self.descriptive,
                raw_asset::STATUS_PENDING,
                now,
            )
            .await?
            .ok_or_else(changed)?;
            if let Some(dup) = &duplicate_of {
                blob::Entity::delete_by_id(self.blob_id).exec(txn).await?;
                let mut ev = asset_event(kind::RAW_DEDUPLICATED, scope, &registered, now);
                ev.detail = json!({ "blob_id": dup.id, "bytes_saved": dup.size_bytes });
                batch.record(ev);
            }
            let size = registered.size_bytes;
            let mut ev = asset_event(kind::RAW_REGISTERED, scope, &registered, now);
            ev.detail = json!({ "sha256": self.sha256.to_hex(), "size_bytes": self.size });
            batch.record(ev);
            hold.settle(txn, scope, size).await?;
            let mut delta = Delta::live(None, size);
            delta.uploads = 1;
            delta.upload_bytes = size;
            if duplicate_of.is_some() {
                delta = delta.dedup(size);
            } else if newly_stored {
                delta = delta.stored(size);
            }
            usage::record(txn, scope.tenant.as_str(), scope.env.as_str(), now, &delta).await?;
            Ok((registered, duplicate_of.is_some()))
        })
    }
}

/// Marks the asset and its blob `failed` with an event, then removes the refused object.
async fn fail(
    core: &Core,
    scope: &Scope,
    asset: &raw_asset::Model,
    blob: &blob::Model,
    key: &ObjectKey,
    code: Code,
    detail: &str,
) -> Result<()> {
    let now = catalog_time(Utc::now());
    let txn = core.db.begin().await?;
    let res = raw_asset::Entity::update_many()
        .col_expr(
            raw_asset::Column::Status,
            Expr::value(raw_asset::STATUS_FAILED),
        )
        .col_expr(raw_asset::Column::UpdatedAt, Expr::value(now))
        .filter(raw_asset::Column::AssetId.eq(asset.asset_id))
        .filter(raw_asset::Column::Status.eq(raw_asset::STATUS_PENDING))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        // Someone else settled it first; leave their outcome alone.
        return Ok(());
    }
    blobs::set_state(&txn, blob.id, blob::STATE_PENDING, blob::STATE_FAILED, now).await?;
    let mut ev = asset_event(kind::RAW_REGISTER_FAILED, scope, asset, now);
    ev.detail = json!({ "code": code, "detail": detail });
    ev.record(&txn).await?;
    txn.commit().await?;
    if let Some(upload_id) = &blob.upload_id {
        if let Err(e) = core.store.abort_multipart(key, upload_id).await {
            tracing::warn!(error = %e, key = %key, "could not abort a refused multipart upload");
        }
    }
    if let Err(e) = core.store.delete(key).await {
        tracing::warn!(error = %e, key = %key, "could not remove a refused object");
    }
    tracing::info!(tenant.id = %scope.tenant, asset.id = %asset.asset_id, code = code.as_str(), "registration refused");
    Ok(())
}
