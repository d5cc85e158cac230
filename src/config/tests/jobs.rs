//! Scheduled-job settings: the sweep's and metering's schedules and rules, and where CloudFront's
//! logs are read from.
use std::path::Path;

use super::{err_with, load, settings};
use crate::config::{cdn_logs::covers_tenant_data, *};

#[test]
fn lifecycle_settings_parse() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    let c = load(&s).unwrap();
    assert!(c.jobs, "jobs run unless switched off");
    assert_eq!(c.lifecycle.cron, DEFAULT_LIFECYCLE_CRON);
    assert_eq!(c.lifecycle.pending_ttl, chrono::Duration::hours(24));
    assert_eq!(c.lifecycle.purge_grace, chrono::Duration::days(7));
    assert_eq!(c.lifecycle.default_retention_days, None);
    assert_eq!(c.lifecycle.delete_concurrency, 4);
    s.set("CAIRN_JOBS", "off");
    s.set("CAIRN_LIFECYCLE_CRON", "30 2 * * *");
    s.set("CAIRN_PENDING_TTL_SECS", "600");
    s.set("CAIRN_PURGE_GRACE_SECS", "0");
    s.set("CAIRN_RETENTION_DAYS", "90");
    s.set("CAIRN_PURGE_CONCURRENCY", "16");
    let c = load(&s).unwrap();
    assert!(!c.jobs);
    assert_eq!(
        c.lifecycle.cron, "0 30 2 * * *",
        "five fields run at second 0"
    );
    assert_eq!(c.lifecycle.pending_ttl, chrono::Duration::minutes(10));
    assert!(c.lifecycle.purge_grace.is_zero());
    assert_eq!(c.lifecycle.default_retention_days, Some(90));
    assert_eq!(c.lifecycle.delete_concurrency, 16);
}

#[test]
fn metering_settings_parse() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    let c = load(&s).unwrap();
    // The defaults, as `cairn serve --help` states them.
    assert_eq!(c.metering.cron, DEFAULT_METERING_CRON);
    assert_eq!(c.metering.cron, "0 0 * * * *");
    assert_eq!(
        (&c.metering.cdn_log_prefix, &c.metering.cdn_log_bucket),
        (&None, &None)
    );
    assert_eq!(
        c.metering.prices,
        Prices {
            storage_gb_month: 0.023,
            egress_gb: 0.085,
            requests_per_1000: 0.001,
        }
    );
    assert_eq!(c.metering.usage_flush, std::time::Duration::from_secs(5));
    s.set("CAIRN_METERING_CRON", "*/5 * * * *");
    s.set("CAIRN_CDN_LOG_PREFIX", "/cdn-logs");
    s.set("CAIRN_PRICE_STORAGE_GB_MONTH", "0.5");
    s.set("CAIRN_PRICE_EGRESS_GB", "0");
    let c = load(&s).unwrap();
    assert_eq!(c.metering.cron, "0 */5 * * * *");
    assert_eq!(c.metering.cdn_log_prefix.as_deref(), Some("cdn-logs/"));
    assert_eq!(c.metering.prices.storage_gb_month, 0.5);
    assert_eq!(c.metering.prices.egress_gb, 0.0);
    assert_eq!(c.metering.prices.requests_per_1000, 0.001);
    assert_eq!(c.metering.usage_flush, std::time::Duration::from_secs(5));
    s.set("CAIRN_USAGE_FLUSH_SECS", "60");
    let c = load(&s).unwrap();
    assert_eq!(c.metering.usage_flush, std::time::Duration::from_secs(60));
}

#[test]
fn cdn_log_prefix_never_covers_tenant_data() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = |v: &str| -> Result<String, String> {
        let mut s = settings(dir.path());
        s.try_set("CAIRN_CDN_LOG_PREFIX", v)
            .map_err(|e| e.to_string())?;
        load(&s)
            .map(|c| c.metering.cdn_log_prefix.unwrap())
            .map_err(|e| e.to_string())
    };
    for (v, want) in [
        ("cdn-logs", "cdn-logs/"),
        ("/cdn-logs/", "cdn-logs/"),
        ("logs/cloudfront/", "logs/cloudfront/"),
        // Beside tenant data, not over it.
        ("tenantsx/", "tenantsx/"),
        ("publicity", "publicity/"),
        ("Tenants/", "Tenants/"),
        ("x/tenants/", "x/tenants/"),
    ] {
        assert_eq!(prefix(v).unwrap(), want, "{v}");
    }
    for v in [
        // The whole bucket.
        "/",
        "//",
        " / ",
        // Tenant data itself, or below it.
        "tenants",
        "tenants/",
        "/tenants/",
        "tenants/acme/",
        "tenants/acme/prod/raw",
        "public",
        "public/",
        "public/tenants/acme/",
        // A start of it: a listing would run into tenant keys.
        "t",
        "ten",
        "p",
        "pub",
        "/pub",
    ] {
        let err = prefix(v).unwrap_err();
        assert!(
            err.starts_with("CAIRN_CDN_LOG_PREFIX is invalid") && err.contains("tenant data"),
            "{v:?}: {err}"
        );
    }
    // Unset or blank: no log ingest, as before.
    assert_eq!(prefix_unset(dir.path(), None), None);
    assert_eq!(prefix_unset(dir.path(), Some("")), None);
}

fn prefix_unset(dir: &Path, v: Option<&str>) -> Option<String> {
    let mut s = settings(dir);
    if let Some(v) = v {
        s.set("CAIRN_CDN_LOG_PREFIX", v);
    }
    load(&s).unwrap().metering.cdn_log_prefix
}

/// infra/'s `CdnLogPrefix` output (`s3://<LogBucket>/<LogPrefix>`) is taken as it is: the
/// log bucket is read with the S3 store's client, the object bucket's tenant data never.
#[test]
fn cdn_log_prefix_takes_the_log_bucket_infra_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let location = |v: &str| -> Result<(Option<String>, String), String> {
        let mut s = settings(dir.path());
        s.set("CAIRN_STORAGE", "s3");
        s.set("RAW_BUCKET", "cairn-objects");
        s.set("CAIRN_JWT_SECRET", &"x".repeat(32));
        s.try_set("CAIRN_CDN_LOG_PREFIX", v)
            .map_err(|e| e.to_string())?;
        load(&s)
            .map(|c| {
                (
                    c.metering.cdn_log_bucket,
                    c.metering.cdn_log_prefix.unwrap(),
                )
            })
            .map_err(|e| e.to_string())
    };
    let other = |b: &str, p: &str| (Some(b.to_owned()), p.to_owned());
    for (v, want) in [
        (
            "s3://cairn-logs/cloudfront/",
            other("cairn-logs", "cloudfront/"),
        ),
        (
            "s3://cairn-logs/cloudfront",
            other("cairn-logs", "cloudfront/"),
        ),
        (" s3://cairn-logs/a/b/ ", other("cairn-logs", "a/b/")),
        // A log bucket of CloudFront's own: all of it, `tenants/` too (no tenant data there).
        ("s3://cairn-logs", other("cairn-logs", "")),
        ("s3://cairn-logs/", other("cairn-logs", "")),
        ("s3://cairn-logs/tenants/", other("cairn-logs", "tenants/")),
        // The object bucket named in full: a prefix in it, as a bare prefix would be.
        (
            "s3://cairn-objects/cdn-logs",
            (None, "cdn-logs/".to_owned()),
        ),
        ("cdn-logs/", (None, "cdn-logs/".to_owned())),
    ] {
        assert_eq!(location(v).unwrap(), want, "{v}");
    }
    for (v, why) in [
        ("s3://cairn-objects/", "tenant data"),
        ("s3://cairn-objects", "tenant data"),
        ("s3://cairn-objects/tenants/acme/", "tenant data"),
        ("s3://cairn-objects/public/", "tenant data"),
        ("s3://cairn-objects/pub", "tenant data"),
        ("s3://Cairn_Logs/cloudfront/", "not a bucket name"),
        ("s3:///cloudfront/", "not a bucket name"),
        ("s3://ab/x", "not a bucket name"),
        ("s3://-logs/x", "not a bucket name"),
        ("s3://cairn-logs//x", "not a key prefix"),
        ("s3://cairn-logs/a//b", "not a key prefix"),
        ("https://cairn-logs.s3.amazonaws.com/x/", "neither"),
    ] {
        let err = location(v).unwrap_err();
        assert!(
            err.starts_with("CAIRN_CDN_LOG_PREFIX is invalid") && err.contains(why),
            "{v:?}: {err}"
        );
    }

    // The local store has no S3 client: refused at start-up, naming both settings.
    let msg = err_with(
        dir.path(),
        &[("CAIRN_CDN_LOG_PREFIX", "s3://cairn-logs/cloudfront/")],
    );
    assert!(
        msg.starts_with("CAIRN_CDN_LOG_PREFIX is invalid") && msg.contains("CAIRN_STORAGE=local"),
        "{msg}"
    );
}

#[test]
fn only_tenant_data_is_covered() {
    for p in [
        "",
        "t",
        "tenants",
        "tenants/",
        "tenants/a",
        "p",
        "public/",
        "public/x/",
    ] {
        assert!(covers_tenant_data(p), "{p}");
    }
    for p in [
        "cdn-logs/",
        "x",
        "tenantsx/",
        "publicx",
        "a/tenants/",
        "logs/public/",
    ] {
        assert!(!covers_tenant_data(p), "{p}");
    }
}
