//! One run of the metering job: storage sample, CloudFront log ingest and reconcile.
use sea_orm::entity::prelude::*;

pub const STATUS_RUNNING: &str = "running";
pub const STATUS_SUCCEEDED: &str = "succeeded";
pub const STATUS_FAILED: &str = "failed";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metering_run")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `schedule`, `cli` or `api`.
    pub trigger: String,
    /// The cron tick of a scheduled run; unique, so one replica samples each tick.
    pub tick: Option<ChronoDateTimeUtc>,
    pub status: String,
    pub holder: String,
    pub started_at: ChronoDateTimeUtc,
    pub finished_at: Option<ChronoDateTimeUtc>,
    pub report: Json,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
