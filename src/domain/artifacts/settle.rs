//! The two ends of an upload: verified bytes make an artifact `available` (on its own blob, or on
//! the tenant+env's stored blob of the same content), refused bytes make it `failed`. Becoming
//! available is checked against the tenant's quota in the settling transaction
//! (`quota::Hold::settle`): a limit lowered since the artifact was admitted refuses it, and the
//! caller decides what the refused artifact becomes.
use chrono::Utc;
use entity::{artifact, blob};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, SqlErr,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{blobs, catalog_time};
use crate::metering::quota::Hold;
use crate::telemetry::record_outcome;

/// Bytes of `blob` were verified to be `sha`: the artifact (still `from_status`, its blob still
/// `blob_from_state`) becomes available. Answers the artifact as it then is, or a 403
/// `quota_exceeded` (`quota::is_refusal`) with nothing changed when it no longer fits.
pub(super) async fn make_available(
    core: &Core,
    scope: &Scope,
    a: &artifact::Model,
    blob: &blob::Model,
    sha: Sha256,
    from_status: &str,
    blob_from_state: &str,
) -> Result<artifact::Model> {
    let key = catalog_key(&blob.key)?;
    for _ in 0..3 {
        let now = catalog_time(Utc::now());
        let txn = core.db.begin().await?;
        let hold = Hold::take(&txn, scope).await?;
        let existing = blobs::find_stored(&txn, scope, visibility_of(a), &sha).await?;
        let dup = match existing {
            Some(e) if e.id != blob.id => {
                if !blobs::add_ref(&txn, e.id, now).await? {
                    continue;
                }
                Some(e)
            }
            _ => match blobs::mark_stored(&txn, blob.id, blob_from_state, &sha, now).await {
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    continue
                }
                Err(e) => return Err(e.into()),
                // Settled by someone else meanwhile: answer what they made of it.
                Ok(false) => return current(core, scope, a.artifact_id).await,
                Ok(true) => None,
            },
        };
        let (blob_id, uri) = match &dup {
            Some(e) => (e.id, core.store.uri(&catalog_key(&e.key)?)),
            None => (blob.id, a.uri.clone()),
        };
        let res = artifact::Entity::update_many()
            .col_expr(
                artifact::Column::Status,
                Expr::value(artifact::STATUS_AVAILABLE),
            )
            .col_expr(artifact::Column::Sha256, Expr::value(sha.to_hex()))
            .col_expr(artifact::Column::BlobId, Expr::value(Some(blob_id)))
            .col_expr(artifact::Column::Uri, Expr::value(uri.clone()))
            .col_expr(artifact::Column::UpdatedAt, Expr::value(now))
            .filter(artifact::Column::ArtifactId.eq(a.artifact_id))
            .filter(artifact::Column::Status.eq(from_status))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            drop(txn);
            return current(core, scope, a.artifact_id).await;
        }
        let mut done = a.clone();
        done.status = artifact::STATUS_AVAILABLE.into();
        done.sha256 = Some(sha.to_hex());
        done.blob_id = Some(blob_id);
        done.uri = uri;
        done.updated_at = now;
        if let Some(e) = &dup {
            blob::Entity::delete_by_id(blob.id).exec(&txn).await?;
            let mut ev = artifact_event(ev::DEDUPLICATED, scope, &done, now);
            ev.detail = json!({ "blob_id": e.id, "bytes_saved": e.size_bytes });
            ev.record(&txn).await?;
        }
        let mut ev = artifact_event(ev::AVAILABLE, scope, &done, now);
        ev.detail = json!({ "sha256": sha.to_hex(), "size_bytes": done.size_bytes });
        ev.record(&txn).await?;
        // Rolled back on refusal: the artifact and its blob stay as they were.
        hold.settle(&txn, scope, done.size_bytes).await?;
        let delta = live_delta(&done).uploaded(done.size_bytes, dup.is_some());
        count(&txn, scope, now, &delta).await?;
        txn.commit().await?;
        if dup.is_some() {
            // Nothing references our copy any more; a lost delete is found by the orphan check.
            if let Err(e) = core.store.delete(&key).await {
                tracing::warn!(error = %e, key = %key, "could not remove a duplicate object");
            }
        }
        core.changes.notify(done.artifact_id);
        record_outcome("artifact_complete", "ok");
        tracing::info!(tenant.id = %scope.tenant, artifact.id = %done.artifact_id, deduplicated = dup.is_some(), "artifact available");
        return Ok(done);
    }
    Err(Problem::contention(
        "the artifact's content changed state repeatedly; retry",
    ))
}

async fn current(core: &Core, scope: &Scope, id: Uuid) -> Result<artifact::Model> {
    get(core, scope, id).await
}

/// The bytes were refused: the artifact (if still `from_status`) and its blob become `failed`,
/// with an event; then the object (and any open multipart upload) is removed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fail(
    core: &Core,
    scope: &Scope,
    a: &artifact::Model,
    blob: &blob::Model,
    from_status: &str,
    blob_from_state: &str,
    code: Code,
    detail: &str,
) -> Result<()> {
    let key = catalog_key(&blob.key)?;
    let now = catalog_time(Utc::now());
    let txn = core.db.begin().await?;
    let res = artifact::Entity::update_many()
        .col_expr(
            artifact::Column::Status,
            Expr::value(artifact::STATUS_FAILED),
        )
        .col_expr(artifact::Column::UpdatedAt, Expr::value(now))
        .filter(artifact::Column::ArtifactId.eq(a.artifact_id))
        .filter(artifact::Column::Status.eq(from_status))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(());
    }
    blobs::set_state(&txn, blob.id, blob_from_state, blob::STATE_FAILED, now).await?;
    let mut ev = artifact_event(ev::FAILED, scope, a, now);
    ev.detail = json!({ "code": code, "detail": detail });
    ev.record(&txn).await?;
    txn.commit().await?;
    if let Some(upload_id) = &blob.upload_id {
        if let Err(e) = core.store.abort_multipart(&key, upload_id).await {
            tracing::warn!(error = %e, key = %key, "could not abort a refused multipart upload");
        }
    }
    if let Err(e) = core.store.delete(&key).await {
        tracing::warn!(error = %e, key = %key, "could not remove a refused object");
    }
    core.changes.notify(a.artifact_id);
    record_outcome("artifact_complete", "failed");
    tracing::info!(tenant.id = %scope.tenant, artifact.id = %a.artifact_id, code = code.as_str(), "artifact refused");
    Ok(())
}

/// A new artifact whose bytes are already stored and verified (one-shot creates): admitted
/// against the quota and inserted `available` on a new blob, or on the stored blob of the same
/// content, whose copy is removed. On refusal the caller removes the stored bytes.
pub(super) async fn insert_available(
    core: &Core,
    scope: &Scope,
    id: Uuid,
    req: &NewArtifact,
    key: &ObjectKey,
    sha: Sha256,
) -> Result<artifact::Model> {
    for _ in 0..3 {
        let now = catalog_time(Utc::now());
        let txn = core.db.begin().await?;
        let admitted = super::create::admit(&txn, scope, req).await?;
        let existing = blobs::find_stored(&txn, scope, req.visibility, &sha).await?;
        let (blob_id, uri, dup) = match existing {
            Some(e) => {
                if !blobs::add_ref(&txn, e.id, now).await? {
                    continue;
                }
                (e.id, core.store.uri(&catalog_key(&e.key)?), Some(e))
            }
            None => {
                let blob_id = Uuid::now_v7();
                let b = blob_row(
                    scope,
                    blob_id,
                    req,
                    key,
                    Some(sha),
                    blob::STATE_STORED,
                    None,
                    now,
                );
                match b.insert(&txn).await {
                    Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                        continue
                    }
                    Err(e) => return Err(e.into()),
                    Ok(_) => (blob_id, core.store.uri(key), None),
                }
            }
        };
        let a = row(
            scope,
            id,
            req,
            Some(blob_id),
            &uri,
            Some(sha),
            artifact::STATUS_AVAILABLE,
            now,
        )
        .insert(&txn)
        .await?;
        record_created(&txn, scope, &a, now).await?;
        if let Some(e) = &dup {
            let mut ev = artifact_event(ev::DEDUPLICATED, scope, &a, now);
            ev.detail = json!({ "blob_id": e.id, "bytes_saved": e.size_bytes });
            ev.record(&txn).await?;
        }
        let delta = live_delta(&a).uploaded(a.size_bytes, dup.is_some());
        count(&txn, scope, now, &delta).await?;
        txn.commit().await?;
        admitted.warn();
        if dup.is_some() {
            if let Err(err) = core.store.delete(key).await {
                tracing::warn!(error = %err, key = %key, "could not remove a duplicate object");
            }
        }
        tracing::info!(tenant.id = %scope.tenant, artifact.id = %id, deduplicated = dup.is_some(), "artifact stored");
        return Ok(a);
    }
    Err(Problem::contention(
        "the content changed state repeatedly; retry",
    ))
}

pub(super) async fn record_created(
    txn: &impl sea_orm::ConnectionTrait,
    scope: &Scope,
    a: &artifact::Model,
    now: chrono::DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    let mut ev = artifact_event(ev::CREATED, scope, a, now);
    ev.detail = json!({
        "key_uri": a.uri,
        "size_bytes": a.size_bytes,
        "content_type": a.content_type,
        "visibility": a.visibility,
    });
    ev.record(txn).await?;
    if a.status == artifact::STATUS_AVAILABLE {
        let mut ev = artifact_event(ev::AVAILABLE, scope, a, now);
        ev.detail = json!({ "sha256": a.sha256, "size_bytes": a.size_bytes });
        ev.record(txn).await?;
    }
    Ok(())
}
