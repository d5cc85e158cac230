//! CloudFront log files that fail for good are recorded once, with why (`error`, counts zero),
//! so no run reads them again; `rejected` counts the lines refused for an absurd `sc-bytes`.
//! One column per statement: SQLite alters a table one column at a time.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CdnLogFile::Table)
                    .add_column(
                        ColumnDef::new(CdnLogFile::Rejected)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CdnLogFile::Table)
                    .add_column(ColumnDef::new(CdnLogFile::Error).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [CdnLogFile::Error, CdnLogFile::Rejected] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CdnLogFile::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum CdnLogFile {
    Table,
    Rejected,
    Error,
}
