//! `POST /artifacts/{id}/complete`: verify what a presigned upload stored. A single PUT/POST is
//! verified at once (size, SHA-256, first bytes); a multipart upload is completed in the store,
//! set `uploading` and hashed by the background verifier ([`super::verify`]).
use chrono::Utc;
use entity::{artifact, blob};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::content::content_mismatch;
use super::ev;
use super::settle::{fail, make_available};
use super::*;
use crate::domain::{blobs, catalog_time, media};
use crate::storage::{StoreError, UploadedPart};

pub async fn complete(
    core: &Core,
    scope: &Scope,
    id: Uuid,
    parts: Option<Vec<UploadedPart>>,
) -> Result<artifact::Model> {
    scope.require_write()?;
    let a = get(core, scope, id).await?;
    match a.status.as_str() {
        artifact::STATUS_PENDING => {}
        artifact::STATUS_FAILED => {
            return Err(Problem::conflict(
                Code::ArtifactFailed,
                "this artifact failed verification; create a new one",
            ))
        }
        // Completing again, or while verification runs, answers the artifact as it is.
        _ => return Ok(a),
    }
    let blob = blob_of(core, &a).await?;
    let key = catalog_key(&blob.key)?;
    let Some(upload_id) = blob.upload_id.clone() else {
        return verify_stored(
            core,
            scope,
            &a,
            &blob,
            artifact::STATUS_PENDING,
            blob::STATE_PENDING,
        )
        .await;
    };
    match core
        .store
        .complete_multipart(&key, &upload_id, parts.as_deref())
        .await
    {
        Ok(()) => {}
        Err(StoreError::Other(detail)) => {
            let detail = format!("the multipart upload cannot be completed: {detail}");
            fail(
                core,
                scope,
                &a,
                &blob,
                artifact::STATUS_PENDING,
                blob::STATE_PENDING,
                Code::UploadIncomplete,
                &detail,
            )
            .await?;
            return Err(Problem::unprocessable(Code::UploadIncomplete, detail));
        }
        Err(e) => return Err(e.into()),
    }
    // The object is whole; its SHA-256 is not known yet. Record that before hashing, so that a
    // restart resumes the verification.
    let now = catalog_time(Utc::now());
    let txn = core.db.begin().await?;
    let res = artifact::Entity::update_many()
        .col_expr(
            artifact::Column::Status,
            Expr::value(artifact::STATUS_UPLOADING),
        )
        .col_expr(artifact::Column::UpdatedAt, Expr::value(now))
        .filter(artifact::Column::ArtifactId.eq(id))
        .filter(artifact::Column::Status.eq(artifact::STATUS_PENDING))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0
        || !blobs::set_state(
            &txn,
            blob.id,
            blob::STATE_PENDING,
            blob::STATE_VERIFYING,
            now,
        )
        .await?
    {
        drop(txn);
        return get(core, scope, id).await;
    }
    let mut uploading = a.clone();
    uploading.status = artifact::STATUS_UPLOADING.into();
    uploading.updated_at = now;
    let mut e = artifact_event(ev::UPLOADED, scope, &uploading, now);
    e.detail = json!({ "multipart": true, "size_bytes": a.size_bytes });
    e.record(&txn).await?;
    txn.commit().await?;
    core.verify_queue.enqueue(id);
    core.changes.notify(id);
    Ok(uploading)
}

/// Checks the stored object against what the artifact declares (size, SHA-256 when declared,
/// first bytes) and settles the artifact: available, or failed with the object removed.
pub(super) async fn verify_stored(
    core: &Core,
    scope: &Scope,
    a: &artifact::Model,
    blob: &blob::Model,
    from_status: &str,
    blob_from_state: &str,
) -> Result<artifact::Model> {
    let key = catalog_key(&blob.key)?;
    let ct = content_type_of(a)?;
    let refused = |code: Code, detail: String| (code, detail);
    let outcome = match core.store.facts(&key).await? {
        None => Err(refused(
            Code::ObjectMissing,
            "no object was uploaded for this artifact".into(),
        )),
        Some((size, _)) if size != a.size_bytes as u64 => Err(refused(
            Code::SizeMismatch,
            format!("the stored object is {size} bytes, not {}", a.size_bytes),
        )),
        Some((_, sha)) if a.sha256.as_deref().is_some_and(|d| d != sha.to_hex()) => Err(refused(
            Code::ChecksumMismatch,
            format!(
                "the stored object's sha256 is {sha}, not {}",
                a.sha256.as_deref().unwrap_or_default()
            ),
        )),
        Some((size, sha)) => {
            let head = if media::has_signature(&ct) && size > 0 {
                core.store
                    .read_prefix(&key, media::SNIFF_LEN)
                    .await?
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if media::sniff(&ct, &head) {
                Ok(sha)
            } else {
                Err(refused(
                    Code::ContentMismatch,
                    content_mismatch(&ct).detail().to_owned(),
                ))
            }
        }
    };
    match outcome {
        Ok(sha) => make_available(core, scope, a, blob, sha, from_status, blob_from_state).await,
        Err((code, detail)) => {
            fail(
                core,
                scope,
                a,
                blob,
                from_status,
                blob_from_state,
                code,
                &detail,
            )
            .await?;
            Err(if code == Code::ContentMismatch {
                Problem::invalid(code, detail)
            } else {
                Problem::unprocessable(code, detail)
            })
        }
    }
}
