//! A CloudFront access log file the metering job has dealt with, once (the key is unique): its
//! lines added to `usage_daily`, or (`error` set, every count zero) refused for good.
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
    /// Lines refused for an absurd `sc-bytes`: not added to any counter.
    pub rejected: i64,
    pub requests: i64,
    pub bytes: i64,
    pub ingested_at: ChronoDateTimeUtc,
    /// Why the file could not be ingested (it is never read again); `None` when it was.
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
