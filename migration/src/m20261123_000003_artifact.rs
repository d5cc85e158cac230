//! Artifacts: what runs produce, keyed by tenant/env/run, with lineage. They share the blob table
//! with raw assets, so dedup, lifecycle and metering treat both alike.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let opt_str = |c: Artifact, n: u32| ColumnDef::new(c).string_len(n).null().to_owned();
        let time = |c: Artifact| {
            ColumnDef::new(c)
                .timestamp_with_time_zone()
                .not_null()
                .to_owned()
        };
        manager
            .create_table(
                Table::create()
                    .table(Artifact::Table)
                    .col(
                        ColumnDef::new(Artifact::ArtifactId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Artifact::TenantId).string_len(63).not_null())
                    .col(ColumnDef::new(Artifact::Env).string_len(63).not_null())
                    .col(ColumnDef::new(Artifact::RunId).string_len(128).not_null())
                    .col(ColumnDef::new(Artifact::Kind).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Artifact::Visibility)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Artifact::BlobId).uuid().null())
                    .col(opt_str(Artifact::RenderRef, 2048))
                    .col(ColumnDef::new(Artifact::Uri).string_len(2048).not_null())
                    .col(
                        ColumnDef::new(Artifact::Filename)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Artifact::ContentType)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Artifact::SizeBytes).big_integer().not_null())
                    .col(opt_str(Artifact::Sha256, 64))
                    .col(ColumnDef::new(Artifact::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Artifact::LegalHold).boolean().not_null())
                    .col(
                        ColumnDef::new(Artifact::ExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(opt_str(Artifact::WorkspaceId, 255))
                    .col(opt_str(Artifact::ProjectId, 255))
                    .col(opt_str(Artifact::CanvasId, 255))
                    .col(ColumnDef::new(Artifact::Rev).big_integer().null())
                    .col(opt_str(Artifact::CorrelationId, 255))
                    .col(opt_str(Artifact::ActorId, 255))
                    .col(ColumnDef::new(Artifact::DerivedFrom).json().not_null())
                    .col(
                        ColumnDef::new(Artifact::CreatedBy)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(time(Artifact::CreatedAt))
                    .col(time(Artifact::UpdatedAt))
                    .col(
                        ColumnDef::new(Artifact::DeletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The run manifest: a run's artifacts in creation order (ids are UUIDv7).
        manager
            .create_index(
                Index::create()
                    .name("ix_artifact_run")
                    .table(Artifact::Table)
                    .col(Artifact::TenantId)
                    .col(Artifact::Env)
                    .col(Artifact::RunId)
                    .col(Artifact::ArtifactId)
                    .to_owned(),
            )
            .await?;
        // Background work (verification, lifecycle) looks artifacts up by status.
        manager
            .create_index(
                Index::create()
                    .name("ix_artifact_status")
                    .table(Artifact::Table)
                    .col(Artifact::Status)
                    .col(Artifact::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_artifact_blob")
                    .table(Artifact::Table)
                    .col(Artifact::BlobId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Artifact::Table).to_owned())
            .await
    }
}

// `ArtifactId` is the column's name.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Artifact {
    Table,
    ArtifactId,
    TenantId,
    Env,
    RunId,
    Kind,
    Visibility,
    BlobId,
    RenderRef,
    Uri,
    Filename,
    ContentType,
    SizeBytes,
    Sha256,
    Status,
    LegalHold,
    ExpiresAt,
    WorkspaceId,
    ProjectId,
    CanvasId,
    Rev,
    CorrelationId,
    ActorId,
    DerivedFrom,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}
