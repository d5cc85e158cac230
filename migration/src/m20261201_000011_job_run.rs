//! `job_run`: the run records of background jobs that have no table of their own (the CDN
//! invalidation queue's runs). The lifecycle sweep and the metering job keep `lifecycle_run` and
//! `metering_run`.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JobRun::Table)
                    .col(ColumnDef::new(JobRun::Id).uuid().not_null().primary_key())
                    .col(text(JobRun::Job, 32))
                    .col(text(JobRun::Trigger, 16))
                    // Unique with `job`: one replica per scheduled tick of each job.
                    .col(time(JobRun::Tick).null())
                    .col(text(JobRun::Status, 16))
                    .col(text(JobRun::Holder, 64))
                    .col(time(JobRun::StartedAt).not_null())
                    .col(time(JobRun::FinishedAt).null())
                    .col(ColumnDef::new(JobRun::Report).json().not_null())
                    .col(ColumnDef::new(JobRun::Error).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_job_run_tick")
                    .table(JobRun::Table)
                    .col(JobRun::Job)
                    .col(JobRun::Tick)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_job_run_started")
                    .table(JobRun::Table)
                    .col(JobRun::StartedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(JobRun::Table).to_owned())
            .await
    }
}

fn time(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().to_owned()
}

fn text(c: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}

#[derive(DeriveIden)]
enum JobRun {
    Table,
    Id,
    Job,
    Trigger,
    Tick,
    Status,
    Holder,
    StartedAt,
    FinishedAt,
    Report,
    Error,
}
