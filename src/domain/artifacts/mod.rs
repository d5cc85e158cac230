//! Artifacts (DESIGN §3–§5): what runs produce, keyed by tenant/env/run, with lineage.
//!
//! Status machine: `pending` (created, bytes expected) → `uploading` (streaming through Cairn, or a
//! completed multipart upload being hashed) → `available`; `failed` when verification refuses the
//! bytes; `deleted` (soft). Every change and its dataset event commit in one transaction; store
//! calls happen outside transactions. Waiters on an artifact (`?wait=`) are woken through
//! [`Changes`].
use chrono::{DateTime, Utc};
use entity::{artifact, blob, raw_asset};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::{
    media::{Kind, Visibility},
    ContentType, Filename, ObjectKey, RunId, Sha256, SizeBytes,
};
use crate::{
    auth::Scope,
    core::Core,
    problem::{Code, Problem, Result},
    storage::{UploadMethod, PRIVATE_IMMUTABLE},
    usage::{self, Delta},
};

mod complete;
mod content;
mod create;
mod delivery;
mod manage;
mod settle;
pub mod verify;
mod watch;

pub(crate) use crate::events::artifact_event;
pub use crate::events::build::lineage_json;
/// Artifact event types (`events::kind::artifact`).
pub(crate) use crate::events::kind::artifact as ev;
pub use complete::complete;
pub use content::{create_with_body, upload_content};
pub use create::{create, create_render_ref};
pub use delivery::{
    delivery_url, download_url, is_own_disposition, manifest, read_url, run_grant, url_ttl, Listed,
    RunGrant,
};
pub use manage::{delete, lineage_chain, set_legal_hold, LineageNode};
pub use watch::{wait, Changes};

/// `Cache-Control` of public objects: keys never repeat, so the CDN may keep them forever.
pub const PUBLIC_IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub fn cache_control(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => PUBLIC_IMMUTABLE,
        Visibility::Private => PRIVATE_IMMUTABLE,
    }
}

/// Where an artifact came from. `derived_from` lists raw assets and artifacts of the same
/// tenant+env.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    pub workspace_id: Option<String>,
    pub project_id: Option<String>,
    pub canvas_id: Option<String>,
    pub rev: Option<i64>,
    pub correlation_id: Option<String>,
    pub actor_id: Option<String>,
    pub derived_from: Vec<Uuid>,
}

/// What every create states.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub run_id: RunId,
    pub kind: Kind,
    pub filename: Filename,
    pub content_type: ContentType,
    pub size: SizeBytes,
    pub sha256: Option<Sha256>,
    pub visibility: Visibility,
    pub lineage: Lineage,
    pub expires_at: Option<DateTime<Utc>>,
    pub method: UploadMethod,
}

/// Artifacts a reader can see at `now`: not deleted, and not past their `expires_at`. An expired
/// artifact is gone for readers the moment it expires (as if deleted: 404, no URL, left out of
/// manifests and lineage); the lifecycle sweep deletes it later.
pub(crate) fn visible(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(artifact::Column::Status.ne(artifact::STATUS_DELETED))
        .add(
            Condition::any()
                .add(artifact::Column::ExpiresAt.is_null())
                .add(artifact::Column::ExpiresAt.gt(crate::domain::catalog_time(now))),
        )
}

/// The artifact in the caller's tenant and env, unless deleted or expired. Anything else is
/// "not found".
pub async fn get(core: &Core, scope: &Scope, id: Uuid) -> Result<artifact::Model> {
    // By primary key alone, the scope and visibility checked on the row: with the scope in the
    // query, Postgres's planner (its statistics taken while the table was small) scanned the
    // tenant's whole scope index for it.
    let now = crate::domain::catalog_time(Utc::now());
    artifact::Entity::find_by_id(id)
        .one(&core.read)
        .await?
        .filter(|a| {
            a.tenant_id == scope.tenant.as_str()
                && a.env == scope.env.as_str()
                && a.status != artifact::STATUS_DELETED
                && a.expires_at.is_none_or(|at| at > now)
        })
        .ok_or_else(Problem::not_found)
}

async fn blob_of(core: &Core, a: &artifact::Model) -> Result<blob::Model> {
    let id = a
        .blob_id
        .ok_or_else(|| Problem::conflict(Code::NoContent, "this artifact refers to a render"))?;
    blob::Entity::find_by_id(id)
        .one(&core.read)
        .await?
        .ok_or_else(|| Problem::internal("artifact without blob"))
}

/// The key of the object holding the artifact's bytes (its own, or the shared blob's).
pub async fn object_key(core: &Core, a: &artifact::Model) -> Result<ObjectKey> {
    let id = a
        .blob_id
        .ok_or_else(|| Problem::conflict(Code::NoContent, "this artifact refers to a render"))?;
    crate::domain::blobs::key_of(core, id)
        .await?
        .ok_or_else(|| Problem::internal("artifact without blob"))
}

use crate::domain::blobs::catalog_key;

/// Checks that every `derived_from` id is a raw asset or artifact of the scope's tenant+env.
/// Ids of other tenants or envs are unknown, exactly like ids that never existed.
async fn check_lineage(core: &Core, scope: &Scope, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let assets: Vec<Uuid> = raw_asset::Entity::find()
        .filter(raw_asset::Column::AssetId.is_in(ids.iter().copied()))
        .filter(raw_asset::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(raw_asset::Column::Env.eq(scope.env.as_str()))
        .filter(raw_asset::Column::Status.ne(raw_asset::STATUS_DELETED))
        .all(&core.read)
        .await?
        .into_iter()
        .map(|a| a.asset_id)
        .collect();
    let artifacts: Vec<Uuid> = artifact::Entity::find()
        .filter(artifact::Column::ArtifactId.is_in(ids.iter().copied()))
        .filter(artifact::Column::TenantId.eq(scope.tenant.as_str()))
        .filter(artifact::Column::Env.eq(scope.env.as_str()))
        .filter(visible(Utc::now()))
        .all(&core.read)
        .await?
        .into_iter()
        .map(|a| a.artifact_id)
        .collect();
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !assets.contains(id) && !artifacts.contains(id))
        .map(Uuid::to_string)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Problem::unprocessable(
            Code::UnknownLineageRef,
            format!(
                "derived_from names no raw asset or artifact of this tenant and env: {}",
                unknown.join(", ")
            ),
        ))
    }
}

/// A new artifact row.
#[allow(clippy::too_many_arguments)]
fn row(
    scope: &Scope,
    id: Uuid,
    req: &NewArtifact,
    blob_id: Option<Uuid>,
    uri: &str,
    sha256: Option<Sha256>,
    status: &str,
    now: DateTime<Utc>,
) -> artifact::ActiveModel {
    use sea_orm::Set;
    let l = &req.lineage;
    artifact::ActiveModel {
        artifact_id: Set(id),
        tenant_id: Set(scope.tenant.to_string()),
        env: Set(scope.env.to_string()),
        run_id: Set(req.run_id.to_string()),
        kind: Set(req.kind.as_str().into()),
        visibility: Set(req.visibility.as_str().into()),
        blob_id: Set(blob_id),
        render_ref: Set(None),
        uri: Set(uri.to_owned()),
        filename: Set(req.filename.to_string()),
        content_type: Set(req.content_type.to_string()),
        size_bytes: Set(req.size.as_i64()),
        sha256: Set(sha256.map(|s| s.to_hex())),
        status: Set(status.to_owned()),
        legal_hold: Set(false),
        expires_at: Set(req.expires_at),
        workspace_id: Set(l.workspace_id.clone()),
        project_id: Set(l.project_id.clone()),
        canvas_id: Set(l.canvas_id.clone()),
        rev: Set(l.rev),
        correlation_id: Set(l.correlation_id.clone()),
        actor_id: Set(l.actor_id.clone()),
        derived_from: Set(json!(l.derived_from)),
        created_by: Set(scope.user.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
}

/// A new blob row for an artifact's object.
#[allow(clippy::too_many_arguments)]
fn blob_row(
    scope: &Scope,
    id: Uuid,
    req: &NewArtifact,
    key: &ObjectKey,
    sha256: Option<Sha256>,
    state: &str,
    upload_id: Option<String>,
    now: DateTime<Utc>,
) -> blob::ActiveModel {
    use sea_orm::Set;
    blob::ActiveModel {
        id: Set(id),
        tenant_id: Set(scope.tenant.to_string()),
        env: Set(scope.env.to_string()),
        visibility: Set(req.visibility.as_str().into()),
        key: Set(key.to_string()),
        sha256: Set(sha256.map(|s| s.to_hex())),
        size_bytes: Set(req.size.as_i64()),
        content_type: Set(req.content_type.to_string()),
        state: Set(state.to_owned()),
        ref_count: Set(1),
        upload_id: Set(upload_id),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn artifact_key(scope: &Scope, req: &NewArtifact, id: Uuid) -> ObjectKey {
    ObjectKey::artifact(
        &scope.tenant,
        &scope.env,
        &req.run_id,
        req.kind,
        req.visibility,
        id,
        &req.filename,
    )
}

fn visibility_of(a: &artifact::Model) -> Visibility {
    visibility_in(&a.visibility)
}

/// The visibility a `visibility` column holds.
fn visibility_in(column: &str) -> Visibility {
    if column == blob::VISIBILITY_PUBLIC {
        Visibility::Public
    } else {
        Visibility::Private
    }
}

/// What a live artifact adds to its scope's counters.
fn live_delta(a: &artifact::Model) -> Delta {
    Delta::live(Kind::parse(&a.kind).ok(), a.size_bytes)
}

/// Records `d` on the scope's counters inside `txn`.
async fn count(
    txn: &impl sea_orm::ConnectionTrait,
    scope: &Scope,
    now: DateTime<Utc>,
    d: &Delta,
) -> Result<(), sea_orm::DbErr> {
    usage::record(txn, scope.tenant.as_str(), scope.env.as_str(), now, d).await
}

fn content_type_of(a: &artifact::Model) -> Result<ContentType> {
    ContentType::parse(&a.content_type)
        .map_err(|_| Problem::internal("bad content type in catalog"))
}
