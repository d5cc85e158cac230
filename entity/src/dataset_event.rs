//! The append-only dataset event log.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dataset_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_type: String,
    pub tenant_id: String,
    pub env: String,
    pub user_id: String,
    pub trace_id: String,
    pub subject_id: Uuid,
    pub lineage: Json,
    pub pii_flags: Json,
    pub train_ok: Option<bool>,
    pub detail: Json,
    pub at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
