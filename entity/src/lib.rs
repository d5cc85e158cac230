//! sea-orm entities of the catalog. Data only: the rules live in the `cairn` crate.
pub mod artifact;
pub mod blob;
pub mod cdn_invalidation;
pub mod cdn_log_file;
pub mod dataset_event;
pub mod job_lease;
pub mod job_run;
pub mod lifecycle_run;
pub mod metering_run;
pub mod quota;
pub mod raw_asset;
pub mod retention_policy;
pub mod usage;
pub mod usage_daily;
