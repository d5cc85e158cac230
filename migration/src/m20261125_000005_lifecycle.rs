//! Lifecycle: retention policies per tenant (optionally per env and kind), the history of sweeps,
//! and job leases so that one replica at a time runs a scheduled job.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RetentionPolicy::Table)
                    .col(
                        ColumnDef::new(RetentionPolicy::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(RetentionPolicy::TenantId, 63))
                    // `*` for every env / every kind (NULLs would not be unique on both backends).
                    .col(text(RetentionPolicy::Env, 63))
                    .col(text(RetentionPolicy::Kind, 16))
                    // NULL: keep forever (overrides a wider rule or the configured default).
                    .col(ColumnDef::new(RetentionPolicy::Days).integer().null())
                    .col(time(RetentionPolicy::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_retention_policy_rule")
                    .table(RetentionPolicy::Table)
                    .col(RetentionPolicy::TenantId)
                    .col(RetentionPolicy::Env)
                    .col(RetentionPolicy::Kind)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LifecycleRun::Table)
                    .col(
                        ColumnDef::new(LifecycleRun::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // `schedule`, `cli` or `api`.
                    .col(text(LifecycleRun::Trigger, 16))
                    // The cron tick a scheduled run belongs to: unique, so one replica per tick.
                    .col(time(LifecycleRun::Tick).null())
                    .col(ColumnDef::new(LifecycleRun::DryRun).boolean().not_null())
                    .col(text(LifecycleRun::Status, 16))
                    .col(text(LifecycleRun::Holder, 64))
                    .col(time(LifecycleRun::StartedAt).not_null())
                    .col(time(LifecycleRun::FinishedAt).null())
                    .col(ColumnDef::new(LifecycleRun::Report).json().not_null())
                    .col(ColumnDef::new(LifecycleRun::Error).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_lifecycle_run_tick")
                    .table(LifecycleRun::Table)
                    .col(LifecycleRun::Tick)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lifecycle_run_started")
                    .table(LifecycleRun::Table)
                    .col(LifecycleRun::StartedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(JobLease::Table)
                    .col(
                        ColumnDef::new(JobLease::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(JobLease::Holder, 64))
                    .col(time(JobLease::ExpiresAt).not_null())
                    .to_owned(),
            )
            .await?;

        // The sweep finds blobs to remove (`deleting`) by state.
        manager
            .create_index(
                Index::create()
                    .name("ix_blob_state")
                    .table(Blob::Table)
                    .col(Blob::State)
                    .col(Blob::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_blob_state")
                    .table(Blob::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(JobLease::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LifecycleRun::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RetentionPolicy::Table).to_owned())
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
enum RetentionPolicy {
    Table,
    Id,
    TenantId,
    Env,
    Kind,
    Days,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LifecycleRun {
    Table,
    Id,
    Trigger,
    Tick,
    DryRun,
    Status,
    Holder,
    StartedAt,
    FinishedAt,
    Report,
    Error,
}

#[derive(DeriveIden)]
enum JobLease {
    Table,
    Name,
    Holder,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Blob {
    Table,
    Id,
    State,
}
