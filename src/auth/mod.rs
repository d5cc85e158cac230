//! Identity and scope (DESIGN §2): bearer-token verification, and the request scope
//! (tenant, env, user, role) every API handler takes as its first argument, as a plain value
//! (`http::scope` extracts it from a request).
mod scope;
mod token;

pub use scope::{Operator, Scope};
pub use token::{mint, Audience, Claims, Role, TokenError, Verifier};
