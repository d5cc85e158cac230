//! One CDN path queued for invalidation when a public item is purged, and its outcome.
use sea_orm::entity::prelude::*;

/// `queued` until CloudFront accepted an invalidation naming the path, then `sent`; `failed`
/// when CloudFront refused it permanently (unknown distribution, access denied, bad request).
pub const STATE_QUEUED: &str = "queued";
pub const STATE_SENT: &str = "sent";
pub const STATE_FAILED: &str = "failed";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cdn_invalidation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The path as CloudFront receives it: `/` + the object key percent-encoded per segment.
    pub path: String,
    pub state: String,
    /// CloudFront's invalidation id, once sent.
    pub invalidation_id: Option<String>,
    /// Runs that tried to send this row.
    pub attempts: i32,
    /// The last failure, kept after a transient one and on `failed` rows.
    pub error: Option<String>,
    /// A sender's lease: other senders leave the row alone until then.
    pub claimed_until: Option<ChronoDateTimeUtc>,
    /// Which sender holds the lease.
    pub claim_token: Option<Uuid>,
    pub created_at: ChronoDateTimeUtc,
    pub sent_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
