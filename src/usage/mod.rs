//! The exact counters: a [`Delta`] applied to `usage` (and the day's `usage_daily` row) inside the
//! caller's transaction, so a counter changes exactly when what it counts commits.
//!
//! Stock counters say what is stored: `objects`, `logical_bytes` and bytes per kind count live
//! items (artifacts `available`, raw assets `registered`); `physical_bytes` counts blobs in state
//! `stored` (shared content once). Activity counters only grow. Callers lock their item and blob
//! rows first and record the delta last, so transactions take the counter rows in one order.
//!
//! Reads write nothing: download URLs handed out and bytes Cairn serves itself are added up in
//! memory (`crate::usage::buffer`) and recorded here in batches.
//!
//! A neutral module: the catalog's writers (domain, lifecycle) and metering all count through it.
//! The counter columns are listed once, in [`columns`].
pub mod buffer;
mod columns;
mod delta;
mod record;

pub(crate) use columns::counters;
pub use columns::{kind_bytes_of, kind_column, slot, ACTIVITY, KINDS, STOCK};
pub use delta::Delta;
pub use record::{day_of, record, record_on, Batch};
