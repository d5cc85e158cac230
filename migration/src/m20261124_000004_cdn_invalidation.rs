//! The CDN invalidation queue: paths of purged public items waiting to be invalidated on
//! CloudFront, and what became of them. A row is written in the purge's own transaction, so a
//! purge that rolls back queues nothing and one that commits cannot lose its invalidation.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let time = |c: CdnInvalidation| ColumnDef::new(c).timestamp_with_time_zone().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(CdnInvalidation::Table)
                    .col(
                        ColumnDef::new(CdnInvalidation::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // `/` + the key percent-encoded per segment: at most 3 * 1024 + 8 bytes.
                    .col(
                        ColumnDef::new(CdnInvalidation::Path)
                            .string_len(4096)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CdnInvalidation::State)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CdnInvalidation::InvalidationId)
                            .string_len(128)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(CdnInvalidation::Attempts)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CdnInvalidation::Error).text().null())
                    .col(time(CdnInvalidation::ClaimedUntil).null())
                    .col(ColumnDef::new(CdnInvalidation::ClaimToken).uuid().null())
                    .col(time(CdnInvalidation::CreatedAt).not_null())
                    .col(time(CdnInvalidation::SentAt).null())
                    .to_owned(),
            )
            .await?;
        // The sender takes the oldest queued rows; the pruner the oldest sent ones.
        manager
            .create_index(
                Index::create()
                    .name("ix_cdn_invalidation_state")
                    .table(CdnInvalidation::Table)
                    .col(CdnInvalidation::State)
                    .col(CdnInvalidation::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CdnInvalidation::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CdnInvalidation {
    Table,
    Id,
    Path,
    State,
    InvalidationId,
    Attempts,
    Error,
    ClaimedUntil,
    ClaimToken,
    CreatedAt,
    SentAt,
}
