//! Scheduled-job settings: whether this replica runs jobs, the lifecycle sweep's schedule and
//! rules, and the metering job's schedule, log location and usage flush period. A cron string
//! is parsed once, here, and kept parsed ([`Schedule`]).
use std::{fmt, time::Duration};

use super::{
    cdn_logs::CdnLogLocation,
    pricing::Prices,
    values::{invalid, non_blank, parse_u64, Optional},
    ConfigError,
};

/// Every 15 minutes, at second 0.
pub const DEFAULT_LIFECYCLE_CRON: &str = "0 */15 * * * *";
/// Every hour, on the hour.
pub const DEFAULT_METERING_CRON: &str = "0 0 * * * *";

/// Scheduled jobs: the lifecycle sweep and the metering job.
#[derive(clap::Args, Debug, Clone)]
pub struct JobSettings {
    /// `off` keeps this replica from running scheduled jobs (the lifecycle sweep, CDN
    /// invalidations); the API still serves. Other replicas (or `cairn lifecycle run`) do the work.
    #[arg(long, env = "CAIRN_JOBS", default_value = "on", action = clap::ArgAction::Set, value_parser = on_off)]
    pub jobs: bool,
    /// When the lifecycle sweep runs: cron with seconds (`sec min hour day month weekday`) or the
    /// classic five fields (then at second 0), in UTC. Every replica may fire; one sweeps.
    #[arg(long, env = "CAIRN_LIFECYCLE_CRON", default_value = DEFAULT_LIFECYCLE_CRON,
          value_parser = |v: &str| Schedule::parse("CAIRN_LIFECYCLE_CRON", v))]
    pub lifecycle_cron: Schedule,
    /// An upload not completed this many seconds after it was presigned or created is
    /// abandoned: its item becomes `failed` and its partial object and multipart upload go.
    #[arg(long, env = "CAIRN_PENDING_TTL_SECS", default_value = "86400", value_parser = pending_ttl)]
    pub pending_ttl_secs: chrono::Duration,
    /// How long a deleted item stays recoverable in the catalog before the sweep purges it and,
    /// once nothing else references its bytes, removes its object.
    #[arg(long, env = "CAIRN_PURGE_GRACE_SECS", default_value = "604800",
          value_parser = |v: &str| age("CAIRN_PURGE_GRACE_SECS", v))]
    pub purge_grace_secs: chrono::Duration,
    /// Multi-object delete requests (up to 1000 keys each) the sweep keeps in flight while it
    /// removes purged objects, 1 to 32.
    #[arg(long, env = "CAIRN_PURGE_CONCURRENCY", default_value = "4", value_parser = purge_concurrency)]
    pub purge_concurrency: usize,
    /// Default retention in days for every tenant's items (audit artifacts excepted); tenant
    /// rules (`PUT /admin/tenants/{tenant}/retention`) override it. Unset: keep until deleted.
    #[arg(long, env = "CAIRN_RETENTION_DAYS", default_value = "", hide_default_value = true, value_parser = retention_days)]
    pub retention_days: Optional<u32>,
    /// When the metering job runs (storage sample for `usage_daily`, CloudFront log ingest,
    /// counter reconcile check): cron like CAIRN_LIFECYCLE_CRON. Every replica may fire; one runs.
    #[arg(long, env = "CAIRN_METERING_CRON", default_value = DEFAULT_METERING_CRON,
          value_parser = |v: &str| Schedule::parse("CAIRN_METERING_CRON", v))]
    pub metering_cron: Schedule,
    /// Where CloudFront writes its standard access logs; the metering job adds their requests and
    /// bytes to each tenant's usage. `s3://<bucket>/<prefix>` as infra/ outputs it (`CdnLogPrefix`):
    /// a log bucket of its own, read with the object store's S3 client and credentials (same
    /// Region), so only with CAIRN_STORAGE=s3. A bare prefix (`cdn-logs/`) is in the object
    /// bucket. Log files are read only directly under the prefix. Refused when it covers tenant
    /// data in the object bucket: the whole bucket, `tenants/…`, `public/…` or a start of them
    /// (`t`, `pub`). Unset: no CDN egress is metered.
    #[arg(long, env = "CAIRN_CDN_LOG_PREFIX", default_value = "", hide_default_value = true, value_parser = CdnLogLocation::parse)]
    pub cdn_log_prefix: Optional<CdnLogLocation>,
}

/// How often the usage counted on reads is recorded.
#[derive(clap::Args, Debug, Clone)]
pub struct UsageFlushSettings {
    /// Seconds between two recordings of the usage counted on reads (download URLs handed out,
    /// bytes Cairn served), 1 to 3600: reads write nothing to the catalog themselves. The server
    /// also records them when it stops; a killed process loses at most this much.
    #[arg(long, env = "CAIRN_USAGE_FLUSH_SECS", default_value = "5", value_parser = usage_flush)]
    pub usage_flush_secs: Duration,
}

/// The lifecycle sweep's schedule and rules.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    pub cron: Schedule,
    pub pending_ttl: chrono::Duration,
    pub purge_grace: chrono::Duration,
    /// Applies where no tenant rule does; `None`: keep.
    pub default_retention_days: Option<u32>,
    /// Delete requests in flight while the sweep removes objects.
    pub delete_concurrency: usize,
}

/// The metering job's schedule, CloudFront log location and prices.
#[derive(Debug, Clone, PartialEq)]
pub struct MeteringConfig {
    pub cron: Schedule,
    /// Key prefix of CloudFront's log files, normalised to end in `/` (empty only in a log bucket
    /// of its own: the whole bucket); never covering tenant data. `None`: no ingest.
    pub cdn_log_prefix: Option<String>,
    /// The log bucket when it is not the object bucket (`CAIRN_CDN_LOG_PREFIX=s3://<bucket>/…`),
    /// read with the object store's client and credentials; `None`: the object store. Only
    /// ever set with the S3 store.
    pub cdn_log_bucket: Option<String>,
    pub prices: Prices,
    /// How often the usage counted on reads is recorded.
    pub usage_flush: Duration,
}

/// A validated cron schedule in tokio-cron-scheduler's six-field form, kept with its parse.
#[derive(Clone)]
pub struct Schedule {
    six_fields: String,
    cron: croner::Cron,
}

impl Schedule {
    /// Five fields get second 0.
    pub fn parse(var: &'static str, v: &str) -> Result<Self, ConfigError> {
        let (six_fields, cron) = parse_cron(var, v)?;
        Ok(Self { six_fields, cron })
    }

    /// The six-field expression, as the scheduler takes it.
    pub fn as_str(&self) -> &str {
        &self.six_fields
    }

    pub fn cron(&self) -> &croner::Cron {
        &self.cron
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.six_fields)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.six_fields == other.six_fields
    }
}

impl PartialEq<&str> for Schedule {
    fn eq(&self, other: &&str) -> bool {
        self.six_fields == *other
    }
}

/// A cron expression in tokio-cron-scheduler's six-field form; five fields get second 0.
pub fn parse_cron(var: &'static str, v: &str) -> Result<(String, croner::Cron), ConfigError> {
    let v = v.trim();
    let six = if v.split_whitespace().count() == 5 {
        format!("0 {v}")
    } else {
        v.to_owned()
    };
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&six)
        .map_err(|e| invalid(var, format!("`{v}` is not a cron expression: {e}")))?;
    Ok((six, cron))
}

fn on_off(v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(invalid(
            "CAIRN_JOBS",
            format!("`{other}` is not `on` or `off`"),
        )),
    }
}

/// Whole seconds, at most 100 years.
fn age(var: &'static str, v: &str) -> Result<chrono::Duration, ConfigError> {
    let n = parse_u64(var, v)?;
    i64::try_from(n)
        .ok()
        .filter(|n| *n <= 100 * 365 * 86_400)
        .map(chrono::Duration::seconds)
        .ok_or_else(|| invalid(var, "must be at most 100 years"))
}

fn pending_ttl(v: &str) -> Result<chrono::Duration, ConfigError> {
    const VAR: &str = "CAIRN_PENDING_TTL_SECS";
    let ttl = age(VAR, v)?;
    if ttl.is_zero() {
        return Err(invalid(
            VAR,
            "must be positive: a zero TTL would fail uploads in flight",
        ));
    }
    Ok(ttl)
}

fn purge_concurrency(v: &str) -> Result<usize, ConfigError> {
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=32).contains(n))
        .ok_or_else(|| invalid("CAIRN_PURGE_CONCURRENCY", "must be a whole number, 1 to 32"))
}

fn retention_days(v: &str) -> Result<Optional<u32>, ConfigError> {
    let Some(v) = non_blank(v) else {
        return Ok(None);
    };
    v.parse::<u32>()
        .ok()
        .filter(|d| (1..=36_500).contains(d))
        .map(Some)
        .ok_or_else(|| {
            invalid(
                "CAIRN_RETENTION_DAYS",
                "must be a whole number of days, 1 to 36500",
            )
        })
}

fn usage_flush(v: &str) -> Result<Duration, ConfigError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=3600).contains(n))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            invalid(
                "CAIRN_USAGE_FLUSH_SECS",
                "must be a whole number of seconds, 1 to 3600",
            )
        })
}

impl JobSettings {
    pub fn lifecycle(&self) -> LifecycleConfig {
        LifecycleConfig {
            cron: self.lifecycle_cron.clone(),
            pending_ttl: self.pending_ttl_secs,
            purge_grace: self.purge_grace_secs,
            default_retention_days: self.retention_days,
            delete_concurrency: self.purge_concurrency,
        }
    }

    /// `object_bucket`: `RAW_BUCKET` with the S3 store, `None` with the local one.
    pub fn metering(
        &self,
        object_bucket: Option<&str>,
        prices: Prices,
        usage_flush: Duration,
    ) -> Result<MeteringConfig, ConfigError> {
        let (cdn_log_bucket, cdn_log_prefix) = match &self.cdn_log_prefix {
            None => (None, None),
            Some(location) => {
                let (bucket, prefix) = location.resolve(object_bucket)?;
                (bucket, Some(prefix))
            }
        };
        Ok(MeteringConfig {
            cron: self.metering_cron.clone(),
            cdn_log_prefix,
            cdn_log_bucket,
            prices,
            usage_flush,
        })
    }
}
