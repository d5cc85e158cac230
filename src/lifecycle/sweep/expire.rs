//! Step 2, expiry and retention: items past `expires_at` or their retention become `deleted`,
//! and a live one leaves the stock counters, one transaction per batch.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::{
    size, system_scope,
    table::{page, Artifacts, RawAssets, Step, Table},
    Sweep, ACTOR,
};
use crate::{
    lifecycle::{
        policy::{Retention, Verdict},
        SweepError,
    },
    usage::Batch,
};

impl<C: ConnectionTrait + TransactionTrait> Sweep<'_, C> {
    pub(super) async fn expire(&mut self) -> Result<(), SweepError> {
        let retention = Retention::load(self.db, self.lc.config.default_retention_days).await?;
        let oldest_kept = retention
            .shortest_days()
            .map(|d| self.now - Duration::days(i64::from(d)));
        self.expire_in::<Artifacts>(&retention, oldest_kept).await?;
        self.expire_in::<RawAssets>(&retention, oldest_kept).await
    }

    /// The items of one table that expiry or retention removes.
    async fn expire_in<T: Table>(
        &mut self,
        retention: &Retention,
        oldest_kept: Option<DateTime<Utc>>,
    ) -> Result<(), SweepError> {
        let mut after = Uuid::nil();
        loop {
            let Some(due) = T::due(self.now, oldest_kept, retention) else {
                return Ok(());
            };
            let batch = page::<T>(due, after).all(self.db).await?;
            let Some(last) = batch.last() else { break };
            after = T::facts(last).id;
            let txn = self.db.begin().await?;
            let mut counts = Batch::default();
            for row in batch {
                let f = T::facts(&row);
                let verdict = retention.judge(&f.item, self.now);
                if verdict == Verdict::Keep {
                    continue;
                }
                let res = T::delete(&row, self.now).exec(&txn).await?;
                if res.rows_affected == 0 {
                    continue;
                }
                let scope = system_scope(f.item.tenant, f.item.env)?;
                let mut e = T::event(Step::Deleted, &scope, &row, self.now);
                e.detail = json!({
                    "previous_status": f.status,
                    "reason": reason(verdict),
                    "by": ACTOR,
                });
                e.record(&txn).await?;
                if let Some(live) = T::live(&row) {
                    counts.add(f.item.tenant, f.item.env, &live.negated());
                }
                self.tally(verdict, f.size_bytes);
            }
            counts.record(&txn, self.now).await?;
            txn.commit().await?;
            let n = self.report.expired.count + self.report.retention.count;
            self.checkpoint("expired and out of retention", n).await?;
        }
        Ok(())
    }

    fn tally(&mut self, verdict: Verdict, bytes: i64) {
        match verdict {
            Verdict::Expired => self.report.expired.add(size(bytes)),
            Verdict::OutOfRetention => self.report.retention.add(size(bytes)),
            Verdict::Keep => {}
        }
    }
}

fn reason(v: Verdict) -> &'static str {
    match v {
        Verdict::Expired => "expired",
        Verdict::OutOfRetention => "retention",
        Verdict::Keep => "kept",
    }
}
