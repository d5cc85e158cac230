//! CDN delivery (DESIGN §6): which URL a client gets for an item, CloudFront URL and cookie
//! signing (pure functions), and the queue of paths to invalidate.
pub mod delivery;
pub mod invalidation;
pub mod signer;

pub use delivery::{Cdn, DeliveryError, Download, PrefixGrant};
