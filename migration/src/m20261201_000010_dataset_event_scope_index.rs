//! Reading the event log (`GET /events`): a tenant+env's events newest first, paged by id
//! (UUIDv7, so in recording order). The index serves that order within the scope; reads of one
//! subject keep using `ix_dataset_event_subject`.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DatasetEvent {
    Table,
    TenantId,
    Env,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_dataset_event_scope")
                    .table(DatasetEvent::Table)
                    .col(DatasetEvent::TenantId)
                    .col(DatasetEvent::Env)
                    .col(DatasetEvent::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_dataset_event_scope")
                    .table(DatasetEvent::Table)
                    .to_owned(),
            )
            .await
    }
}
