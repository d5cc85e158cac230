//! The services that apply Cairn's rules: raw assets, artifacts and the blobs they share. They
//! work on a [`crate::core::Core`] and on the values of [`crate::values`] (re-exported here, as
//! the API's vocabulary).

pub mod artifacts;
pub mod blobs;
pub mod raw_assets;

pub use crate::values::{
    catalog_time, media, ContentType, Env, Filename, ObjectKey, RunId, Sha256, SizeBytes, TenantId,
    ValueError,
};
