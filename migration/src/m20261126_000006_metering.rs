//! Metering: exact usage counters per tenant+env, daily rows (activity, storage samples, CDN
//! egress), quotas, the CloudFront log files already ingested, and the metering job's runs.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Counters kept per tenant+env in `usage` (cumulative) and per day in `usage_daily`.
const ACTIVITY: [Usage; 10] = [
    Usage::Uploads,
    Usage::UploadBytes,
    Usage::Downloads,
    Usage::DownloadBytes,
    Usage::DedupHits,
    Usage::DedupBytesSaved,
    Usage::Purges,
    Usage::ReclaimedBytes,
    Usage::CdnRequests,
    Usage::CdnBytes,
];

/// What is stored now, in `usage` only.
const STOCK: [Usage; 11] = [
    Usage::Objects,
    Usage::LogicalBytes,
    Usage::PhysicalBytes,
    Usage::PreviewBytes,
    Usage::ReplayBytes,
    Usage::AuditBytes,
    Usage::ImageBytes,
    Usage::VideoBytes,
    Usage::AudioBytes,
    Usage::BundleBytes,
    Usage::RawBytes,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut usage = Table::create();
        usage
            .table(Usage::Table)
            .col(text(Usage::TenantId, 63))
            .col(text(Usage::Env, 63));
        for c in STOCK.into_iter().chain(ACTIVITY) {
            usage.col(counter(c));
        }
        usage
            .col(time(Usage::UpdatedAt).not_null())
            .primary_key(Index::create().col(Usage::TenantId).col(Usage::Env));
        manager.create_table(usage.to_owned()).await?;

        let mut daily = Table::create();
        daily
            .table(UsageDaily::Table)
            .col(text(UsageDaily::TenantId, 63))
            .col(text(UsageDaily::Env, 63))
            // UTC day, `YYYY-MM-DD`.
            .col(text(UsageDaily::Day, 10));
        for c in ACTIVITY {
            daily.col(counter(c));
        }
        // Storage samples, one per metering tick: average = sum / samples.
        daily
            .col(counter(UsageDaily::Samples))
            .col(counter(UsageDaily::StoredBytesSum))
            .col(counter(UsageDaily::StoredBytesPeak))
            .col(counter(UsageDaily::Objects))
            .col(counter(UsageDaily::LogicalBytes))
            .col(time(UsageDaily::UpdatedAt).not_null())
            .primary_key(
                Index::create()
                    .col(UsageDaily::TenantId)
                    .col(UsageDaily::Env)
                    .col(UsageDaily::Day),
            );
        manager.create_table(daily.to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_usage_daily_day")
                    .table(UsageDaily::Table)
                    .col(UsageDaily::Day)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Quota::Table)
                    .col(text(Quota::TenantId, 63))
                    // `*`: the tenant's total over every env.
                    .col(text(Quota::Env, 63))
                    .col(ColumnDef::new(Quota::MaxBytes).big_integer().null())
                    .col(ColumnDef::new(Quota::MaxObjects).big_integer().null())
                    .col(time(Quota::UpdatedAt).not_null())
                    .primary_key(Index::create().col(Quota::TenantId).col(Quota::Env))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CdnLogFile::Table)
                    .col(
                        ColumnDef::new(CdnLogFile::Key)
                            .string_len(1024)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CdnLogFile::SizeBytes)
                            .big_integer()
                            .not_null(),
                    )
                    .col(counter(CdnLogFile::Lines))
                    .col(counter(CdnLogFile::Skipped))
                    .col(counter(CdnLogFile::Requests))
                    .col(counter(CdnLogFile::Bytes))
                    .col(time(CdnLogFile::IngestedAt).not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MeteringRun::Table)
                    .col(
                        ColumnDef::new(MeteringRun::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(MeteringRun::Trigger, 16))
                    // Unique: one replica per scheduled tick.
                    .col(time(MeteringRun::Tick).null())
                    .col(text(MeteringRun::Status, 16))
                    .col(text(MeteringRun::Holder, 64))
                    .col(time(MeteringRun::StartedAt).not_null())
                    .col(time(MeteringRun::FinishedAt).null())
                    .col(ColumnDef::new(MeteringRun::Report).json().not_null())
                    .col(ColumnDef::new(MeteringRun::Error).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_metering_run_tick")
                    .table(MeteringRun::Table)
                    .col(MeteringRun::Tick)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_metering_run_started")
                    .table(MeteringRun::Table)
                    .col(MeteringRun::StartedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            MeteringRun::Table.into_iden(),
            CdnLogFile::Table.into_iden(),
            Quota::Table.into_iden(),
            UsageDaily::Table.into_iden(),
            Usage::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn time(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().to_owned()
}

fn text(c: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(c).string_len(len).not_null().to_owned()
}

fn counter(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[derive(DeriveIden, Clone, Copy)]
enum Usage {
    Table,
    TenantId,
    Env,
    Objects,
    LogicalBytes,
    PhysicalBytes,
    PreviewBytes,
    ReplayBytes,
    AuditBytes,
    ImageBytes,
    VideoBytes,
    AudioBytes,
    BundleBytes,
    RawBytes,
    Uploads,
    UploadBytes,
    Downloads,
    DownloadBytes,
    DedupHits,
    DedupBytesSaved,
    Purges,
    ReclaimedBytes,
    CdnRequests,
    CdnBytes,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    TenantId,
    Env,
    Day,
    Samples,
    StoredBytesSum,
    StoredBytesPeak,
    Objects,
    LogicalBytes,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Quota {
    Table,
    TenantId,
    Env,
    MaxBytes,
    MaxObjects,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CdnLogFile {
    Table,
    Key,
    SizeBytes,
    Lines,
    Skipped,
    Requests,
    Bytes,
    IngestedAt,
}

#[derive(DeriveIden)]
enum MeteringRun {
    Table,
    Id,
    Trigger,
    Tick,
    Status,
    Holder,
    StartedAt,
    FinishedAt,
    Report,
    Error,
}
