//! One UTC day of a tenant+env: activity counted as it happens, storage sampled by the metering
//! job (average = `stored_bytes_sum / samples`), CDN egress from CloudFront logs (also part of
//! `downloads`/`download_bytes`, which count everything served).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub env: String,
    /// `YYYY-MM-DD` (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    pub uploads: i64,
    pub upload_bytes: i64,
    /// Download URLs handed out (reads, manifests, raw presign-downloads) and their items' bytes.
    pub download_urls: i64,
    pub download_url_bytes: i64,
    /// Downloads actually served: responses with bytes (Cairn's own and CloudFront's requests)
    /// and the bytes sent.
    pub downloads: i64,
    pub download_bytes: i64,
    pub dedup_hits: i64,
    pub dedup_bytes_saved: i64,
    pub purges: i64,
    pub reclaimed_bytes: i64,
    /// CloudFront's part of `downloads`/`download_bytes`, per its logs.
    pub cdn_requests: i64,
    pub cdn_bytes: i64,
    pub samples: i64,
    pub stored_bytes_sum: i64,
    pub stored_bytes_peak: i64,
    /// Objects and logical bytes at the day's last sample.
    pub objects: i64,
    pub logical_bytes: i64,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
