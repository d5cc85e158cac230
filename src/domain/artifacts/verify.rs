//! The background verifier of completed multipart uploads: S3 keeps no whole-object SHA-256 for
//! them, so Cairn streams the object, hashes it (bounded memory) and settles the artifact
//! ([`verify_one`]; the job runner's `jobs::verify` works the queue, at most [`CONCURRENCY`]
//! objects at once). The work is recorded in the catalog (artifact `uploading`, blob
//! `verifying`), so [`recover`] resumes it after a restart; running it twice
//! (two replicas) is harmless, as every transition is conditional. Verified bytes that no longer
//! fit the tenant's quota (a limit lowered since the artifact was admitted) fail the artifact
//! with code `quota_exceeded`: there is no client to answer, and failing releases what the
//! upload held.
use entity::{artifact, blob};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{complete::verify_stored, settle::fail};
use crate::{auth::Scope, core::Core, metering::quota, problem::Problem};

/// Objects hashed at once.
pub const CONCURRENCY: usize = 2;

pub use crate::core::VerifyQueue;

/// Whether a verification that failed with `e` should run again later: when the store or the
/// catalog was out, a concurrent change won, or something broke on Cairn's side. A refusal of
/// the bytes is final (it has been recorded on the artifact).
pub fn worth_retry(e: &Problem) -> bool {
    e.is_transient()
}

/// Queues every artifact whose multipart upload is complete but not yet verified.
pub async fn recover(core: &Core) -> Result<(), Problem> {
    let ids: Vec<Uuid> = artifact::Entity::find()
        .select_only()
        .column(artifact::Column::ArtifactId)
        .inner_join(blob::Entity)
        .filter(artifact::Column::Status.eq(artifact::STATUS_UPLOADING))
        .filter(blob::Column::State.eq(blob::STATE_VERIFYING))
        .into_tuple()
        .all(&core.db)
        .await?;
    if !ids.is_empty() {
        tracing::info!(
            count = ids.len(),
            "resuming verification of completed uploads"
        );
    }
    for id in ids {
        core.verify_queue.enqueue(id);
    }
    Ok(())
}

/// Verifies one artifact whose multipart upload is complete, if it still waits for it.
pub async fn verify_one(core: &Core, id: Uuid) -> Result<(), Problem> {
    let Some(a) = artifact::Entity::find_by_id(id)
        .filter(artifact::Column::Status.eq(artifact::STATUS_UPLOADING))
        .one(&core.db)
        .await?
    else {
        return Ok(());
    };
    let Some(blob_id) = a.blob_id else {
        return Ok(());
    };
    let Some(blob) = blob::Entity::find_by_id(blob_id)
        .filter(blob::Column::State.eq(blob::STATE_VERIFYING))
        .one(&core.db)
        .await?
    else {
        return Ok(());
    };
    let scope = Scope::system(&a.tenant_id, &a.env, &a.created_by)?;
    tracing::info!(artifact.id = %id, size_bytes = a.size_bytes, "verifying a completed upload");
    match verify_stored(
        core,
        &scope,
        &a,
        &blob,
        artifact::STATUS_UPLOADING,
        blob::STATE_VERIFYING,
    )
    .await
    {
        Err(e) if quota::is_refusal(&e) => {
            fail(
                core,
                &scope,
                &a,
                &blob,
                artifact::STATUS_UPLOADING,
                blob::STATE_VERIFYING,
                quota::REFUSED,
                e.detail(),
            )
            .await
        }
        // A refusal has been recorded on the artifact; only outages are worth a retry.
        Err(e) if !worth_retry(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}
