//! CDN delivery (DESIGN §6): which URL a client gets for an item, CloudFront URL and cookie
//! signing (pure functions), and the queue of paths to invalidate.
pub mod delivery;
pub mod invalidation;
/// CloudFront signing lives in the crate's leaf module [`crate::signer`] (the configuration
/// parses keys with it); it stays reachable here.
pub use crate::signer;

pub use delivery::{Cdn, DeliveryError, Download, PrefixGrant};
