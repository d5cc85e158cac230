//! One stored object. Content-identical uploads in one tenant+env share a blob (dedup).
use sea_orm::entity::prelude::*;

/// `pending` until the object is written; `verifying` while Cairn hashes a completed multipart
/// upload; `stored` once verified; `failed` when verification refused it (or its upload was
/// abandoned); `deleting` once the lifecycle sweep decided to remove its object (no item holds a
/// reference): the object goes, then the row (or, while a failed item still names it, the row
/// returns to `failed`).
pub const STATE_PENDING: &str = "pending";
pub const STATE_VERIFYING: &str = "verifying";
pub const STATE_STORED: &str = "stored";
pub const STATE_FAILED: &str = "failed";
pub const STATE_DELETING: &str = "deleting";

pub const VISIBILITY_PRIVATE: &str = "private";
pub const VISIBILITY_PUBLIC: &str = "public";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blob")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub env: String,
    /// `private` or `public`; dedup never crosses it.
    pub visibility: String,
    pub key: String,
    pub sha256: Option<String>,
    pub size_bytes: i64,
    pub content_type: String,
    pub state: String,
    pub ref_count: i32,
    /// The store's multipart upload id while a presigned multipart upload is open.
    pub upload_id: Option<String>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
