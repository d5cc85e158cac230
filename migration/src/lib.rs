//! Catalog migrations. One file per migration; the same migrations run on SQLite and Postgres.
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_catalog;
mod m20261122_000002_blob_upload_id;
mod m20261123_000003_artifact;
mod m20261124_000004_cdn_invalidation;
mod m20261125_000005_lifecycle;
mod m20261126_000006_metering;
mod m20261201_000007_cdn_log_file_error;
mod m20261201_000008_in_progress_index;
mod m20261201_000009_download_urls;
mod m20261201_000010_dataset_event_scope_index;
mod m20261201_000011_job_run;

pub use m20261201_000008_in_progress_index::{ARTIFACT_IN_PROGRESS, RAW_ASSET_IN_PROGRESS};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_catalog::Migration),
            Box::new(m20261122_000002_blob_upload_id::Migration),
            Box::new(m20261123_000003_artifact::Migration),
            Box::new(m20261124_000004_cdn_invalidation::Migration),
            Box::new(m20261125_000005_lifecycle::Migration),
            Box::new(m20261126_000006_metering::Migration),
            Box::new(m20261201_000007_cdn_log_file_error::Migration),
            Box::new(m20261201_000008_in_progress_index::Migration),
            Box::new(m20261201_000009_download_urls::Migration),
            Box::new(m20261201_000010_dataset_event_scope_index::Migration),
            Box::new(m20261201_000011_job_run::Migration),
        ]
    }
}
