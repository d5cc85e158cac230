//! The values every layer shares, parsed once where they enter (valid by construction inside):
//! tenant, env, run id, filename, sizes, hashes, content types, artifact kinds and visibility,
//! object keys, and the catalog's time precision. The lowest layer of Cairn's own code: it uses
//! only `problem` (the codes its refusals carry), so the store, the CDN, auth, usage and the
//! domain services can all build on it without pointing at each other.
mod key;
pub mod media;
mod newtypes;

pub use key::ObjectKey;
pub use newtypes::{ContentType, Env, Filename, RunId, Sha256, SizeBytes, TenantId, ValueError};

/// A time as the catalog keeps it: microseconds (Postgres' precision), so that what an API call
/// answers is exactly what a later read returns, and repeated registrations compare equal.
pub fn catalog_time(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(t, 6)
}
