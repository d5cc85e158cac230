//! A CloudFront access log file whose lines were added to `usage_daily` (once: the key is unique).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cdn_log_file")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub size_bytes: i64,
    pub lines: i64,
    /// Lines not attributed to a tenant and env (other paths, unknown envs).
    pub skipped: i64,
    pub requests: i64,
    pub bytes: i64,
    pub ingested_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
