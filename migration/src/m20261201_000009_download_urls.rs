//! Two download measures instead of one (issue 15). Until now `downloads`/`download_bytes` counted
//! download URLs handed out (and the sizes of their items); they now count what was actually
//! served: bytes Cairn streamed itself plus CloudFront's, per its logs. URLs get their own
//! columns, `download_urls`/`download_url_bytes`.
//!
//! What moves where, in `usage` and every `usage_daily` row:
//! - `download_urls` ← `downloads`, `download_url_bytes` ← `download_bytes` (the old counts were
//!   URLs, so they keep their history under the URL measure);
//! - `downloads` ← `cdn_requests`, `download_bytes` ← `cdn_bytes`: the bytes served that were
//!   known before (CloudFront logs ingested so far); what Cairn served itself was never counted
//!   and starts at zero.
//!
//! One column per statement: SQLite alters a table one column at a time. Every assignment of the
//! `UPDATE` reads the row as it was (SQL semantics, on both backends).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Usage {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageDaily {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Col {
    Downloads,
    DownloadBytes,
    DownloadUrls,
    DownloadUrlBytes,
    CdnRequests,
    CdnBytes,
}

fn tables() -> [DynIden; 2] {
    [Usage::Table.into_iden(), UsageDaily::Table.into_iden()]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            for col in [Col::DownloadUrls, Col::DownloadUrlBytes] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .add_column(ColumnDef::new(col).big_integer().not_null().default(0))
                            .to_owned(),
                    )
                    .await?;
            }
            manager
                .exec_stmt(
                    Query::update()
                        .table(table.clone())
                        .value(Col::DownloadUrls, Expr::col(Col::Downloads))
                        .value(Col::DownloadUrlBytes, Expr::col(Col::DownloadBytes))
                        .value(Col::Downloads, Expr::col(Col::CdnRequests))
                        .value(Col::DownloadBytes, Expr::col(Col::CdnBytes))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    /// Back to one measure: the URL counts return to `downloads`/`download_bytes` (what was
    /// served is dropped, as the old schema had no place for it).
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager
                .exec_stmt(
                    Query::update()
                        .table(table.clone())
                        .value(Col::Downloads, Expr::col(Col::DownloadUrls))
                        .value(Col::DownloadBytes, Expr::col(Col::DownloadUrlBytes))
                        .to_owned(),
                )
                .await?;
            for col in [Col::DownloadUrlBytes, Col::DownloadUrls] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .drop_column(col)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
