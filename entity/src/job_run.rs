//! One run of a background job without a run table of its own (the CDN invalidation queue).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "job_run")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The job's name (`invalidations`).
    pub job: String,
    /// `schedule`, `cli` or `api`.
    pub trigger: String,
    /// The tick of a scheduled run; unique per job, so one replica runs each tick.
    pub tick: Option<ChronoDateTimeUtc>,
    /// `running`, `succeeded`, `partial`, `failed` or `skipped`, as in `lifecycle_run`.
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
