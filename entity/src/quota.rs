//! A tenant's limits: over all its envs (`env` = `*`) or in one env. A NULL limit is no limit.
use sea_orm::entity::prelude::*;

/// `env` of a limit on the tenant's total.
pub const ALL_ENVS: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quota")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub env: String,
    pub max_bytes: Option<i64>,
    pub max_objects: Option<i64>,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
