//! One integration binary: every test spawns the real app (the same `Application` production
//! runs) on a random port with a fresh catalog and object directory. `CAIRN_TEST_BACKEND`
//! selects the catalog: `sqlite` (default) or `postgres` (a database per test at
//! `CAIRN_TEST_POSTGRES_URL`). `scripts/test.sh` runs the suite on both.
mod helpers;

mod artifact_bad_input;
mod artifact_isolation;
mod artifacts_flow;
mod artifacts_media;
mod artifacts_s3;
mod auth_scope;
mod bad_input;
mod billing;
mod cdn_log_bucket;
mod cdn_signed;
mod cli;
mod connections;
mod content_safety;
mod cors;
mod dashboard;
mod dedup;
mod delivery;
mod events;
mod hostile_bodies;
mod invalidation;
mod isolation;
mod jobs;
mod lifecycle;
mod lifecycle_replicas;
mod lifetimes;
mod metering;
mod metering_input;
mod multipart;
mod objects;
mod observability;
mod quota_hold;
mod raw_flow;
mod store_faults;
mod strangers;
mod temp_files;
mod tool_inputs;
mod viewing;
