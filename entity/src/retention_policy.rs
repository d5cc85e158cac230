//! A retention rule: how many days a tenant's items (optionally of one env, one kind) are kept.
use sea_orm::entity::prelude::*;

/// `env` / `kind` of a rule that covers every env / every kind (audit excepted).
pub const ANY: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "retention_policy")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub env: String,
    /// An artifact kind, `raw` for raw assets, or `*`.
    pub kind: String,
    /// `None`: keep forever.
    pub days: Option<i32>,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
