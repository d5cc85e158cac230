//! Domain newtypes, parsed once where a request enters (valid by construction inside), and the
//! services that apply Cairn's rules to them.
mod key;
mod values;

pub mod artifacts;
pub mod blobs;
pub mod media;
pub mod raw_assets;

pub use key::ObjectKey;
pub use values::{ContentType, Env, Filename, RunId, Sha256, SizeBytes, TenantId, ValueError};

/// A time as the catalog keeps it: microseconds (Postgres' precision), so that what an API call
/// answers is exactly what a later read returns, and repeated registrations compare equal.
pub fn catalog_time(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(t, 6)
}
