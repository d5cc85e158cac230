//! Domain newtypes, parsed once where a request enters (valid by construction inside), and the
//! services that apply Cairn's rules to them.
mod key;
mod values;

pub mod raw_assets;

pub use key::ObjectKey;
pub use values::{ContentType, Env, Filename, Sha256, SizeBytes, TenantId, ValueError};
