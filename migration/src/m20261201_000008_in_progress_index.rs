//! Uploads in progress by tenant: quota admission adds the declared sizes of a tenant's pending
//! raw assets and pending/uploading artifacts to its live usage. Partial indexes hold only those
//! rows (a few per tenant at any time), so settled items cost them nothing. Partial indexes have
//! the same syntax on SQLite and Postgres; a query uses one only when it states the predicate
//! with the same literals (a bound parameter does not match it), hence the shared constants.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The predicate of `ix_artifact_in_progress`: artifacts whose bytes are expected or verifying.
pub const ARTIFACT_IN_PROGRESS: &str = "status IN ('pending', 'uploading')";
/// The predicate of `ix_raw_asset_in_progress`: raw assets presigned and not yet registered.
pub const RAW_ASSET_IN_PROGRESS: &str = "status = 'pending'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE INDEX ix_artifact_in_progress ON artifact (tenant_id, env, size_bytes) \
             WHERE {ARTIFACT_IN_PROGRESS}"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "CREATE INDEX ix_raw_asset_in_progress ON raw_asset (tenant_id, env, size_bytes) \
             WHERE {RAW_ASSET_IN_PROGRESS}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX ix_artifact_in_progress")
            .await?;
        db.execute_unprepared("DROP INDEX ix_raw_asset_in_progress")
            .await?;
        Ok(())
    }
}
