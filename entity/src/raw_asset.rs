//! A raw asset: an uploaded source file and its descriptive facts.
use sea_orm::entity::prelude::*;

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_REGISTERED: &str = "registered";
pub const STATUS_FAILED: &str = "failed";
pub const STATUS_DELETED: &str = "deleted";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "raw_asset")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub asset_id: Uuid,
    pub tenant_id: String,
    pub env: String,
    pub uri: String,
    pub blob_id: Uuid,
    pub filename: String,
    pub sha256: Option<String>,
    pub size_bytes: i64,
    pub content_type: String,
    pub captured_at: Option<ChronoDateTimeUtc>,
    pub imported_at: Option<ChronoDateTimeUtc>,
    pub source_ref: Option<String>,
    pub capture_location: Option<Json>,
    pub metadata: Json,
    pub pii_flags: Json,
    pub train_ok: bool,
    pub status: String,
    /// False only for an asset registered by dedup at presign, until its first register call
    /// supplies the descriptive fields; after that the asset is immutable.
    pub sealed: bool,
    pub created_by: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
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
