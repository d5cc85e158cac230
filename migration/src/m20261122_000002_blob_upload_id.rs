//! Multipart uploads presigned for clients: the store's upload id, kept until the upload is
//! completed (or aborted by the lifecycle sweep).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Blob::Table)
                    .add_column(ColumnDef::new(Blob::UploadId).string_len(1024).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Blob::Table)
                    .drop_column(Blob::UploadId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Blob {
    Table,
    UploadId,
}
