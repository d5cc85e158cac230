//! An artifact a run produced (preview, replay, audit, campaign media), with its lineage.
use sea_orm::entity::prelude::*;

/// `pending` until bytes arrive; `uploading` while they stream through Cairn or while a
/// multipart upload is verified; `available` once verified; `failed`; `deleted` (soft).
pub const STATUS_PENDING: &str = "pending";
pub const STATUS_UPLOADING: &str = "uploading";
pub const STATUS_AVAILABLE: &str = "available";
pub const STATUS_FAILED: &str = "failed";
pub const STATUS_DELETED: &str = "deleted";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "artifact")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub artifact_id: Uuid,
    pub tenant_id: String,
    pub env: String,
    pub run_id: String,
    pub kind: String,
    pub visibility: String,
    /// `None` only for a render-ref preview, which points at `render_ref` instead of bytes.
    pub blob_id: Option<Uuid>,
    pub render_ref: Option<String>,
    pub uri: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: Option<String>,
    pub status: String,
    pub legal_hold: bool,
    pub expires_at: Option<ChronoDateTimeUtc>,
    pub workspace_id: Option<String>,
    pub project_id: Option<String>,
    pub canvas_id: Option<String>,
    pub rev: Option<i64>,
    pub correlation_id: Option<String>,
    pub actor_id: Option<String>,
    /// Ids of the raw assets and artifacts (same tenant+env) this one was made from.
    pub derived_from: Json,
    pub created_by: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    pub deleted_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::blob::Entity",
        from = "Column::BlobId",
        to = "super::blob::Column::Id"
    )]
    Blob,
}

impl Related<super::blob::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Blob.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
