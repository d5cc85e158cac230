//! Exact usage counters of one tenant+env, changed in the same transaction as what they count.
//! Stock (what is stored now): objects and logical bytes of live items (available artifacts,
//! registered raw assets), physical bytes of stored blobs, bytes per kind. Activity (cumulative):
//! uploads, download URLs issued (and their items' bytes), downloads actually served (by Cairn
//! itself and by CloudFront per its logs; `cdn_*` is CloudFront's part), dedup hits, purges.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub env: String,
    pub objects: i64,
    pub logical_bytes: i64,
    pub physical_bytes: i64,
    pub preview_bytes: i64,
    pub replay_bytes: i64,
    pub audit_bytes: i64,
    pub image_bytes: i64,
    pub video_bytes: i64,
    pub audio_bytes: i64,
    pub bundle_bytes: i64,
    pub raw_bytes: i64,
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
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
