//! One lifecycle sweep: who ran it, when, and what it did (or, for a dry run, would have done).
use sea_orm::entity::prelude::*;

pub const STATUS_RUNNING: &str = "running";
pub const STATUS_SUCCEEDED: &str = "succeeded";
/// Finished, but some objects could not be removed; the next sweep retries them.
pub const STATUS_PARTIAL: &str = "partial";
pub const STATUS_FAILED: &str = "failed";
/// A scheduled tick whose sweep did not run because another sweep held the lease.
pub const STATUS_SKIPPED: &str = "skipped";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "lifecycle_run")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `schedule`, `cli` or `api`.
    pub trigger: String,
    /// The cron tick of a scheduled run; unique, so one replica runs each tick.
    pub tick: Option<ChronoDateTimeUtc>,
    pub dry_run: bool,
    pub status: String,
    /// The process that ran it (`host:pid:uuid`).
    pub holder: String,
    pub started_at: ChronoDateTimeUtc,
    pub finished_at: Option<ChronoDateTimeUtc>,
    /// Counts and bytes per step, and the errors met.
    pub report: Json,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
