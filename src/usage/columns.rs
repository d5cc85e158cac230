//! The counter columns, listed once: [`counters!`] names every scalar counter (its field, the
//! same in [`Delta`](super::Delta), `usage`, `usage_daily` and the report rows, and its column
//! variant, the same in both entities); [`KINDS`] names the bytes counted per kind. The upserts,
//! the reconcile comparison, the report rows and the CSV columns are generated from them.
use entity::usage;

use crate::values::media::Kind;

/// Calls `$then!($($args)*; stock: ...; activity: ...)` with the scalar counters as
/// `field Column` pairs: stock (what is stored now) and activity (cumulative; `usage_daily`
/// keeps it per day), each in the order reports and CSV show them.
macro_rules! counters {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)*;
            stock:
                objects Objects,
                logical_bytes LogicalBytes,
                physical_bytes PhysicalBytes;
            activity:
                uploads Uploads,
                upload_bytes UploadBytes,
                download_urls DownloadUrls,
                download_url_bytes DownloadUrlBytes,
                downloads Downloads,
                download_bytes DownloadBytes,
                dedup_hits DedupHits,
                dedup_bytes_saved DedupBytesSaved,
                purges Purges,
                reclaimed_bytes ReclaimedBytes,
                cdn_requests CdnRequests,
                cdn_bytes CdnBytes
        )
    };
}
pub(crate) use counters;

macro_rules! names {
    ($part:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        names!(@ $part [$(stringify!($s)),*] [$(stringify!($a)),*])
    };
    (@ stock [$($s:expr),*] [$($a:expr),*]) => { [$($s),*] };
    (@ activity [$($s:expr),*] [$($a:expr),*]) => { [$($a),*] };
}

/// The stock counters' names (their fields and columns), before the kinds.
pub const STOCK: [&str; 3] = counters!(names!(stock));
/// The activity counters' names (their fields and columns).
pub const ACTIVITY: [&str; 12] = counters!(names!(activity));

/// The kinds counted apart (`None`: raw assets), with their `usage` columns and names.
pub const KINDS: [(Option<Kind>, usage::Column, &str); 8] = [
    (Some(Kind::Preview), usage::Column::PreviewBytes, "preview"),
    (Some(Kind::Replay), usage::Column::ReplayBytes, "replay"),
    (Some(Kind::Audit), usage::Column::AuditBytes, "audit"),
    (Some(Kind::Image), usage::Column::ImageBytes, "image"),
    (Some(Kind::Video), usage::Column::VideoBytes, "video"),
    (Some(Kind::Audio), usage::Column::AudioBytes, "audio"),
    (Some(Kind::Bundle), usage::Column::BundleBytes, "bundle"),
    (None, usage::Column::RawBytes, "raw"),
];

/// The index of a kind in [`KINDS`].
pub fn slot(kind: Option<Kind>) -> usize {
    KINDS.iter().position(|(k, _, _)| *k == kind).unwrap_or(7)
}

/// The kind bytes of a `usage` row, in [`KINDS`] order.
pub fn kind_bytes_of(u: &usage::Model) -> [i64; 8] {
    use sea_orm::{ModelTrait, Value};
    KINDS.map(|(_, c, _)| match u.get(c) {
        Value::BigInt(Some(b)) => b,
        _ => 0,
    })
}

/// The column (and CSV column) of a kind's bytes: `preview` → `preview_bytes`.
pub fn kind_column(name: &str) -> String {
    format!("{name}_bytes")
}

#[cfg(test)]
mod tests {
    use entity::{usage, usage_daily};
    use sea_orm::{IdenStatic, Iterable};

    use super::*;

    /// Every counter column of both tables is in the list, and nothing else.
    #[test]
    fn the_list_names_every_counter_column() {
        let mut listed: Vec<String> = STOCK.iter().map(|s| s.to_string()).collect();
        listed.extend(KINDS.iter().map(|(_, _, n)| kind_column(n)));
        listed.extend(ACTIVITY.iter().map(|s| s.to_string()));
        for (_, c, n) in KINDS {
            assert_eq!(c.as_str(), kind_column(n));
        }
        let keys = ["tenant_id", "env", "day", "updated_at"];
        let usage_cols: Vec<String> = usage::Column::iter()
            .map(|c| c.as_str().to_owned())
            .filter(|c| !keys.contains(&c.as_str()))
            .collect();
        assert_eq!(usage_cols.len(), listed.len(), "{usage_cols:?}");
        for c in &usage_cols {
            assert!(listed.contains(c), "usage.{c} is not in the list");
        }
        let daily: Vec<String> = usage_daily::Column::iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        for a in ACTIVITY {
            assert!(daily.iter().any(|d| d == a), "usage_daily has no {a}");
        }
    }
}
