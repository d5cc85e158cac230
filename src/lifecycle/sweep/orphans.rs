//! Step 6, orphans: objects under `tenants/` or `public/` that no blob row names and older than
//! the TTL are reported (and removed with `fix_orphans`); so are the store's temp files older than
//! the TTL (the local store's `tmp/`: uploads a killed process interrupted).
use std::collections::{HashMap, HashSet};

use entity::blob;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};

use super::{Sweep, ITEM_BATCH, PREFIXES};
use crate::{
    lifecycle::{report::MAX_LISTED, SweepError},
    storage::DELETE_BATCH,
    values::ObjectKey,
};

impl<C: ConnectionTrait + TransactionTrait> Sweep<'_, C> {
    pub(super) async fn find_orphans(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.pending_ttl;
        for prefix in PREFIXES {
            let mut next = None;
            loop {
                let page = self.store().list_objects(prefix, next).await?;
                let old: Vec<_> = page
                    .objects
                    .into_iter()
                    .filter(|o| o.last_modified <= cutoff && !self.dry_deleted.contains(&o.key))
                    .collect();
                let mut known = HashSet::new();
                for chunk in old.chunks(ITEM_BATCH as usize) {
                    let keys: Vec<String> = chunk.iter().map(|o| o.key.clone()).collect();
                    let rows: Vec<String> = blob::Entity::find()
                        .select_only()
                        .column(blob::Column::Key)
                        .filter(blob::Column::Key.is_in(keys))
                        .into_tuple()
                        .all(self.db)
                        .await?;
                    known.extend(rows);
                }
                let orphans: Vec<_> = old
                    .into_iter()
                    .filter(|o| !known.contains(&o.key))
                    .collect();
                for o in &orphans {
                    self.report.orphans.found.add(o.size);
                    if self.report.orphans.sample.len() < MAX_LISTED {
                        self.report.orphans.sample.push(o.key.clone());
                    }
                    tracing::warn!(key = %o.key, size = o.size, "orphan object: no blob row names it");
                }
                if self.opts.fix_orphans {
                    for chunk in orphans.chunks(DELETE_BATCH) {
                        let keys: Vec<ObjectKey> = chunk
                            .iter()
                            .filter_map(|o| ObjectKey::parse(&o.key))
                            .collect();
                        let failed: HashMap<String, String> =
                            self.delete_keys(&keys).await.into_iter().collect();
                        for o in chunk {
                            match failed.get(&o.key) {
                                Some(why) => {
                                    self.report.error(format!("delete orphan {}: {why}", o.key))
                                }
                                None => self.report.orphans.removed.add(o.size),
                            }
                        }
                    }
                }
                self.checkpoint("orphan check", self.report.orphans.found.count)
                    .await?;
                next = page.next;
                if next.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Temp files not modified within the TTL: no upload still writes to them (the same rule as
    /// orphan objects). Removed with `fix_orphans` (only recorded in a dry run).
    pub(super) async fn find_orphan_temp_files(&mut self) -> Result<(), SweepError> {
        let cutoff = self.now - self.lc.config.pending_ttl;
        let stale = self.store().list_temp_files(cutoff).await?;
        for f in &stale {
            let found = &mut self.report.orphan_temp_files;
            found.found.add(f.size);
            if found.sample.len() < MAX_LISTED {
                found.sample.push(f.name.clone());
            }
            tracing::warn!(temp_file = %f.name, size = f.size, "orphan temp file: an interrupted upload left it");
        }
        if self.opts.fix_orphans {
            for f in &stale {
                let removed = if self.opts.dry_run {
                    Ok(())
                } else {
                    self.store().remove_temp_file(&f.name).await
                };
                match removed {
                    Ok(()) => self.report.orphan_temp_files.removed.add(f.size),
                    Err(e) => self
                        .report
                        .error(format!("remove temp file {}: {e}", f.name)),
                }
            }
        }
        self.checkpoint(
            "orphan temp files",
            self.report.orphan_temp_files.found.count,
        )
        .await
    }
}
