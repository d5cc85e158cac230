//! Raw assets (DESIGN §4–§5): presign an upload, register (verify) it, read it, presign a download.
//! Every state change and its dataset event commit in one transaction; store calls happen outside
//! transactions so a slow store never holds a catalog connection.
use chrono::{DateTime, Utc};
use entity::{blob, raw_asset};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use serde_json::Value;
use uuid::Uuid;

use super::{blobs, media::Visibility, ContentType, Filename, ObjectKey, Sha256, SizeBytes};
pub(crate) use crate::events::asset_event;
use crate::{
    auth::Scope,
    core::Core,
    problem::{Problem, Result},
    storage::{Upload, UploadMethod, UploadedPart},
};
pub(super) use blobs::add_ref;

mod download;
mod presign;
mod register;

pub use download::presign_download;
pub use presign::presign_upload;
pub use register::register;

pub struct PresignUpload {
    pub filename: Filename,
    pub content_type: ContentType,
    pub size: SizeBytes,
    pub sha256: Option<Sha256>,
    pub method: UploadMethod,
}

pub enum Presigned {
    Upload {
        asset_id: Uuid,
        key: ObjectKey,
        uri: String,
        upload: Upload,
        expires_at: DateTime<Utc>,
    },
    /// The tenant+env already stores this content: the asset is registered, nothing to upload.
    Deduplicated(Box<raw_asset::Model>),
}

/// The descriptive facts of a registration; `None` means "not stated".
#[derive(Debug, Default, Clone)]
pub struct Descriptive {
    pub captured_at: Option<DateTime<Utc>>,
    pub imported_at: Option<DateTime<Utc>>,
    pub source_ref: Option<String>,
    pub capture_location: Option<Value>,
    pub metadata: Option<Value>,
    pub pii_flags: Option<Value>,
    pub train_ok: Option<bool>,
}

pub struct Register {
    pub asset_id: Uuid,
    pub sha256: Sha256,
    pub size: SizeBytes,
    pub content_type: ContentType,
    pub descriptive: Descriptive,
    /// For a multipart upload: the parts and their ETags (else the store's list is used).
    pub parts: Option<Vec<UploadedPart>>,
}

pub(super) use blobs::catalog_key;

pub(super) async fn find_stored_blob(
    db: &impl ConnectionTrait,
    scope: &Scope,
    sha: &Sha256,
) -> Result<Option<blob::Model>, DbErr> {
    blobs::find_stored(db, scope, Visibility::Private, sha).await
}

/// The asset in the caller's tenant and env, unless deleted. Anything else is "not found".
pub async fn get(core: &Core, scope: &Scope, asset_id: Uuid) -> Result<raw_asset::Model> {
    // By primary key alone, the scope checked on the row: with the scope in the query,
    // Postgres's planner (its statistics taken while the table was small) scanned the tenant's
    // whole scope index for it.
    raw_asset::Entity::find_by_id(asset_id)
        .one(&core.read)
        .await?
        .filter(|a| {
            a.tenant_id == scope.tenant.as_str()
                && a.env == scope.env.as_str()
                && a.status != raw_asset::STATUS_DELETED
        })
        .ok_or_else(Problem::not_found)
}
