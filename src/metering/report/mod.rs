//! What operators read: usage rows per tenant+env (the counters, or a date range's activity from
//! `usage_daily`), a tenant's daily series with monthly totals, CSV, and cost estimates.
//!
//! Two download measures: `download_urls` (URLs handed out, with `download_url_bytes`, the sizes
//! of their items) and `downloads`/`download_bytes` (what was actually served: by Cairn itself,
//! and by CloudFront per its logs, whose part is `cdn_requests`/`cdn_bytes`). Egress is priced
//! from bytes served; requests are uploads and downloads served.
use std::collections::BTreeMap;

use chrono::NaiveDate;
use entity::{usage, usage_daily};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use crate::{
    config::Prices,
    usage::{counters, kind_bytes_of, Delta, KINDS},
};

mod csv;

pub use csv::{csv, csv_header};

const GB: f64 = 1e9;
/// Days per month in GB-month prices.
const DAYS_PER_MONTH: f64 = 30.0;

/// Which rows, and over which days (inclusive; both or neither).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant: Option<String>,
    pub env: Option<String>,
    pub range: Option<(NaiveDate, NaiveDate)>,
}

/// One tenant+env. Stock fields are the counters now; activity fields are cumulative, or the
/// range's sums when one is given, with the range's GB-days and estimated cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageRow {
    pub tenant_id: String,
    pub env: String,
    pub objects: i64,
    pub logical_bytes: i64,
    pub physical_bytes: i64,
    pub bytes_by_kind: BTreeMap<&'static str, i64>,
    pub uploads: i64,
    pub upload_bytes: i64,
    /// Download URLs handed out, and the bytes of the items they lead to.
    pub download_urls: i64,
    pub download_url_bytes: i64,
    /// Downloads actually served (Cairn's and CloudFront's), and the bytes sent: the egress.
    pub downloads: i64,
    pub download_bytes: i64,
    pub dedup_hits: i64,
    pub dedup_bytes_saved: i64,
    pub purges: i64,
    pub reclaimed_bytes: i64,
    pub cdn_requests: i64,
    pub cdn_bytes: i64,
    pub gb_days: Option<f64>,
    pub estimated_cost: Option<f64>,
}

/// `$to.field += $from.field` for every activity counter.
macro_rules! add_activity {
    ($to:ident, $from:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        $($to.$a += $from.$a;)*
    };
}

/// Activity of some days (a `usage_daily` sum): the activity counters of a [`Delta`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Activity {
    counts: Delta,
    gb_days: f64,
}

impl Activity {
    fn add(&mut self, d: &usage_daily::Model) {
        let c = &mut self.counts;
        counters!(add_activity!(c, d));
        self.gb_days += gb_days(d);
    }

    /// Requests priced: uploads and downloads served (CloudFront's among them). Handing out a
    /// URL is not one.
    fn requests(&self) -> i64 {
        self.counts.uploads + self.counts.downloads
    }
}

/// The day's average stored bytes in GB (one day of them: GB-days).
fn gb_days(d: &usage_daily::Model) -> f64 {
    if d.samples == 0 {
        0.0
    } else {
        d.stored_bytes_sum as f64 / d.samples as f64 / GB
    }
}

/// Storage (GB-days), egress (bytes served: Cairn's and CloudFront's) and requests, priced.
pub fn cost(p: &Prices, gb_days: f64, egress_bytes: i64, requests: i64) -> f64 {
    let c = gb_days / DAYS_PER_MONTH * p.storage_gb_month
        + egress_bytes as f64 / GB * p.egress_gb
        + requests as f64 / 1000.0 * p.requests_per_1000;
    (c * 1e6).round() / 1e6
}

fn day_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The usage rows the filter selects, by tenant and env.
pub async fn rows<C: ConnectionTrait>(
    db: &C,
    f: &Filter,
    prices: &Prices,
) -> Result<Vec<UsageRow>, DbErr> {
    let mut q = usage::Entity::find();
    if let Some(t) = &f.tenant {
        q = q.filter(usage::Column::TenantId.eq(t.as_str()));
    }
    if let Some(e) = &f.env {
        q = q.filter(usage::Column::Env.eq(e.as_str()));
    }
    let counters = q
        .order_by_asc(usage::Column::TenantId)
        .order_by_asc(usage::Column::Env)
        .all(db)
        .await?;
    let mut out: Vec<UsageRow> = counters.iter().map(stock_and_totals).collect();
    let Some((from, to)) = f.range else {
        return Ok(out);
    };
    let mut dq = usage_daily::Entity::find()
        .filter(usage_daily::Column::Day.gte(day_str(from)))
        .filter(usage_daily::Column::Day.lte(day_str(to)));
    if let Some(t) = &f.tenant {
        dq = dq.filter(usage_daily::Column::TenantId.eq(t.as_str()));
    }
    if let Some(e) = &f.env {
        dq = dq.filter(usage_daily::Column::Env.eq(e.as_str()));
    }
    let mut by_key: BTreeMap<(String, String), Activity> = BTreeMap::new();
    for d in dq.all(db).await? {
        by_key
            .entry((d.tenant_id.clone(), d.env.clone()))
            .or_default()
            .add(&d);
    }
    for r in &mut out {
        let a = by_key
            .remove(&(r.tenant_id.clone(), r.env.clone()))
            .unwrap_or_default();
        macro_rules! range_activity {
            ($r:ident, $c:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
                $($r.$a = $c.$a;)*
            };
        }
        let c = &a.counts;
        counters!(range_activity!(r, c));
        r.gb_days = Some(round(a.gb_days));
        r.estimated_cost = Some(cost(prices, a.gb_days, c.download_bytes, a.requests()));
    }
    Ok(out)
}

fn round(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

fn stock_and_totals(u: &usage::Model) -> UsageRow {
    macro_rules! row {
        ($u:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
            UsageRow {
                tenant_id: $u.tenant_id.clone(),
                env: $u.env.clone(),
                bytes_by_kind: KINDS
                    .iter()
                    .zip(kind_bytes_of($u))
                    .map(|((_, _, name), b)| (*name, b))
                    .collect(),
                gb_days: None,
                estimated_cost: None,
                $($s: $u.$s,)*
                $($a: $u.$a,)*
            }
        };
    }
    counters!(row!(u))
}

/// One day of a tenant (its envs summed, or one env).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayRow {
    pub day: String,
    pub stored_bytes_avg: i64,
    pub stored_bytes_peak: i64,
    pub gb_days: f64,
    pub objects: i64,
    pub logical_bytes: i64,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub download_urls: i64,
    pub download_url_bytes: i64,
    pub downloads: i64,
    pub download_bytes: i64,
    pub dedup_hits: i64,
    pub dedup_bytes_saved: i64,
    pub purges: i64,
    pub reclaimed_bytes: i64,
    pub cdn_requests: i64,
    pub cdn_bytes: i64,
    pub estimated_cost: f64,
}

/// One calendar month of a tenant, from its days in the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MonthRow {
    pub month: String,
    pub gb_days: f64,
    /// Bytes served (`download_bytes`).
    pub egress_bytes: i64,
    pub requests: i64,
    pub estimated_cost: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    pub days: Vec<DayRow>,
    pub months: Vec<MonthRow>,
}

/// A tenant's days in `[from, to]` (days without data are left out), and their months.
pub async fn series<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    env: Option<&str>,
    (from, to): (NaiveDate, NaiveDate),
    prices: &Prices,
) -> Result<Series, DbErr> {
    let mut q = usage_daily::Entity::find()
        .filter(usage_daily::Column::TenantId.eq(tenant))
        .filter(usage_daily::Column::Day.gte(day_str(from)))
        .filter(usage_daily::Column::Day.lte(day_str(to)));
    if let Some(e) = env {
        q = q.filter(usage_daily::Column::Env.eq(e));
    }
    let mut days: BTreeMap<String, DayRow> = BTreeMap::new();
    for d in q.all(db).await? {
        let r = days.entry(d.day.clone()).or_insert_with(|| DayRow {
            day: d.day.clone(),
            ..DayRow::default()
        });
        let avg = if d.samples == 0 {
            0
        } else {
            d.stored_bytes_sum / d.samples
        };
        r.stored_bytes_avg += avg;
        r.stored_bytes_peak += d.stored_bytes_peak;
        r.gb_days += gb_days(&d);
        r.objects += d.objects;
        r.logical_bytes += d.logical_bytes;
        counters!(add_activity!(r, d));
    }
    let mut months: BTreeMap<String, MonthRow> = BTreeMap::new();
    for r in days.values_mut() {
        let requests = r.uploads + r.downloads;
        r.estimated_cost = cost(prices, r.gb_days, r.download_bytes, requests);
        r.gb_days = round(r.gb_days);
        let m = months
            .entry(r.day[..7].to_owned())
            .or_insert_with(|| MonthRow {
                month: r.day[..7].to_owned(),
                ..MonthRow::default()
            });
        m.gb_days += r.gb_days;
        m.egress_bytes += r.download_bytes;
        m.requests += requests;
    }
    for m in months.values_mut() {
        m.estimated_cost = cost(prices, m.gb_days, m.egress_bytes, m.requests);
        m.gb_days = round(m.gb_days);
    }
    Ok(Series {
        days: days.into_values().collect(),
        months: months.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_adds_storage_egress_and_requests() {
        let p = Prices {
            storage_gb_month: 3.0,
            egress_gb: 0.5,
            requests_per_1000: 2.0,
        };
        // 30 GB-days = 1 GB-month = 3.0; 2 GB egress = 1.0; 500 requests = 1.0.
        assert_eq!(cost(&p, 30.0, 2_000_000_000, 500), 5.0);
        let defaults = crate::config::Settings::from_vars([])
            .unwrap()
            .pricing
            .prices();
        assert_eq!(cost(&defaults, 0.0, 0, 0), 0.0);
    }
}
