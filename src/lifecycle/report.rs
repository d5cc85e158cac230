//! What a sweep did (or, dry, would do): counts and bytes per step, and the errors it met.
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// How many items (or objects) a step touched, and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// Leftovers nothing in the catalog names, older than the pending TTL: objects under `tenants/`
/// or `public/` that no blob row names, or temp files of uploads a killed process interrupted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphans {
    pub found: Tally,
    /// Removed (`--fix-orphans`).
    pub removed: Tally,
    /// The first keys (or temp file names) found, for the operator to look at.
    pub sample: Vec<String>,
}

/// The most errors and orphan keys one report keeps.
pub const MAX_LISTED: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Uploads abandoned past `CAIRN_PENDING_TTL_SECS`: items marked `failed`, with their declared
    /// sizes (what was promised, not what was stored: see [`Report::bytes_reclaimed`]).
    pub abandoned: Tally,
    /// Multipart uploads aborted: those the catalog recorded and those only the store listed.
    pub multipart_aborted: u64,
    /// The bytes the aborted uploads' parts held, as the store listed them before the abort.
    #[serde(default)]
    pub multipart_aborted_bytes: u64,
    /// Items soft-deleted because `expires_at` passed.
    pub expired: Tally,
    /// Items soft-deleted because they outlived their retention.
    pub retention: Tally,
    /// Deleted items past the grace period whose catalog rows were removed (logical bytes).
    pub purged: Tally,
    /// Objects removed from the store once no item referenced them, with the sizes the store
    /// gave for them: a blob whose upload never came has no object and counts nothing here.
    pub objects_deleted: Tally,
    /// Objects still to remove after this run (their deletes failed; the next sweep retries).
    pub objects_pending: u64,
    /// CDN paths queued for invalidation (public objects removed).
    pub invalidations_queued: u64,
    pub orphans: Orphans,
    /// Temp files of interrupted uploads (the local store's `tmp/`).
    #[serde(default)]
    pub orphan_temp_files: Orphans,
    pub errors: Vec<String>,
    /// Errors beyond the ones listed.
    pub errors_omitted: u64,
}

impl Report {
    pub fn error(&mut self, e: impl Into<String>) {
        if self.errors.len() < MAX_LISTED {
            self.errors.push(e.into());
        } else {
            self.errors_omitted += 1;
        }
    }

    /// Bytes the store held and no longer holds after this run: removed objects, aborted
    /// uploads' parts, orphans and temp files removed, each as the store sized it (never an
    /// upload's declared size).
    pub fn bytes_reclaimed(&self) -> u64 {
        self.objects_deleted.bytes
            + self.multipart_aborted_bytes
            + self.orphans.removed.bytes
            + self.orphan_temp_files.removed.bytes
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.errors_omitted > 0
    }

    /// A plain-text table for terminals.
    pub fn table(&self, dry_run: bool) -> String {
        let verb = if dry_run { "would" } else { "did" };
        let rows: [(&str, String, Option<u64>); 11] = [
            (
                "abandoned → failed (declared)",
                self.abandoned.count.to_string(),
                Some(self.abandoned.bytes),
            ),
            (
                "multipart uploads aborted",
                self.multipart_aborted.to_string(),
                Some(self.multipart_aborted_bytes),
            ),
            (
                "expired → deleted",
                self.expired.count.to_string(),
                Some(self.expired.bytes),
            ),
            (
                "out of retention → deleted",
                self.retention.count.to_string(),
                Some(self.retention.bytes),
            ),
            (
                "purged (past grace)",
                self.purged.count.to_string(),
                Some(self.purged.bytes),
            ),
            (
                "objects removed",
                self.objects_deleted.count.to_string(),
                Some(self.objects_deleted.bytes),
            ),
            (
                "CDN invalidations queued",
                self.invalidations_queued.to_string(),
                None,
            ),
            (
                "orphan objects found",
                self.orphans.found.count.to_string(),
                Some(self.orphans.found.bytes),
            ),
            (
                "orphan objects removed",
                self.orphans.removed.count.to_string(),
                Some(self.orphans.removed.bytes),
            ),
            (
                "orphan temp files found",
                self.orphan_temp_files.found.count.to_string(),
                Some(self.orphan_temp_files.found.bytes),
            ),
            (
                "orphan temp files removed",
                self.orphan_temp_files.removed.count.to_string(),
                Some(self.orphan_temp_files.removed.bytes),
            ),
        ];
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<30} {:>10} {:>16}",
            format!("step ({verb})"),
            "items",
            "bytes"
        );
        let _ = writeln!(out, "{:-<30} {:->10} {:->16}", "", "", "");
        for (name, n, bytes) in rows {
            let b = bytes.map(|b| b.to_string()).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "{name:<30} {n:>10} {b:>16}");
        }
        let _ = writeln!(out, "{:-<30} {:->10} {:->16}", "", "", "");
        let _ = writeln!(
            out,
            "{:<30} {:>10} {:>16}",
            "bytes reclaimed",
            "",
            self.bytes_reclaimed()
        );
        if self.objects_pending > 0 {
            let _ = writeln!(
                out,
                "{} objects could not be removed; the next sweep retries them",
                self.objects_pending
            );
        }
        for key in &self.orphans.sample {
            let _ = writeln!(out, "orphan: {key}");
        }
        for name in &self.orphan_temp_files.sample {
            let _ = writeln!(out, "orphan temp file: {name}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "error: {e}");
        }
        if self.errors_omitted > 0 {
            let _ = writeln!(out, "... and {} more errors", self.errors_omitted);
        }
        out
    }
}
