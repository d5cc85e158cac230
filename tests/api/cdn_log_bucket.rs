//! `CAIRN_CDN_LOG_PREFIX` as infra/ outputs it: `s3://<LogBucket>/<LogPrefix>`. CloudFront cannot
//! log into the object bucket (`BucketOwnerEnforced`, no ACLs), so its standard logs land in a
//! bucket of their own. On S3 the metering job reads them there, with the app's own client and
//! credentials, and counts each tenant's CDN requests and bytes; the local store has no S3
//! client, and start-up refuses the setting naming both variables.
use aws_sdk_s3::primitives::ByteStream;
use cairn::{
    config::{Config, Settings},
    jobs::{self, Trigger},
    metering::RunOptions,
};
use chrono::Utc;
use entity::{usage, usage_daily};
use sea_orm::EntityTrait;

use crate::helpers::{new_s3_bucket, s3_client, storage, TestApp};

/// CloudFront standard log files (gzip, W3C, all 33 fields): tests/fixtures/cloudfront-logs.
const LOGS: [&str; 2] = [
    "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz",
    "E2EXAMPLE123.2026-11-21-09.e5f6a7b8.gz",
];

/// infra/'s default `LogPrefix`.
const LOG_PREFIX: &str = "cloudfront/";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/cloudfront-logs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn daily(app: &TestApp, tenant: &str, env: &str, day: &str) -> (i64, i64) {
    let key = (tenant.to_owned(), env.to_owned(), day.to_owned());
    let r = usage_daily::Entity::find_by_id(key)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no usage_daily row for {tenant}/{env} on {day}"));
    (r.cdn_requests, r.cdn_bytes)
}

async fn total(app: &TestApp, tenant: &str, env: &str) -> (i64, i64) {
    let u = usage::Entity::find_by_id((tenant.to_owned(), env.to_owned()))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no usage row for {tenant}/{env}"));
    (u.cdn_requests, u.cdn_bytes)
}

#[tokio::test]
async fn cdn_egress_is_read_from_the_log_bucket_infra_outputs() {
    if storage() == "s3" {
        logs_in_a_second_bucket_count_per_tenant().await;
    } else {
        the_local_store_refuses_a_log_bucket();
    }
}

/// S3: the log files are in a second bucket, as CloudFront delivers them there; nothing of them
/// is in the object bucket.
async fn logs_in_a_second_bucket_count_per_tenant() {
    let log_bucket = new_s3_bucket().await;
    let s3 = s3_client().await;
    for name in LOGS {
        s3.put_object()
            .bucket(&log_bucket)
            .key(format!("{LOG_PREFIX}{name}"))
            .content_type("application/x-gzip")
            .body(ByteStream::from(fixture(name)))
            .send()
            .await
            .unwrap();
    }
    // Beside them, what a log bucket also holds and is no log file of this prefix.
    s3.put_object()
        .bucket(&log_bucket)
        .key("s3-access/2026-11-20-10-00-00-0123456789ABCDEF")
        .body(ByteStream::from_static(b"not a CloudFront log"))
        .send()
        .await
        .unwrap();
    let infra_output = format!("s3://{log_bucket}/{LOG_PREFIX}");
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CDN_LOG_PREFIX", &infra_output);
    })
    .await;
    assert_ne!(app.bucket.as_deref(), Some(log_bucket.as_str()));

    let run = jobs::metering::run(
        &app.state.metering,
        Trigger::Api,
        RunOptions::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    let logs = &run.report["cdn_logs"];
    assert_eq!(logs["files"], 2, "{}", run.report);
    assert_eq!(logs["failed"], 0, "{}", run.report);
    assert_eq!(
        logs["errors"].as_array().map(Vec::len),
        Some(0),
        "{}",
        run.report
    );
    // 9 requests: 7 of Cairn keys, 2 skipped (favicon, an unknown env).
    assert_eq!(
        (logs["lines"].as_u64(), logs["skipped"].as_u64()),
        (Some(9), Some(2))
    );

    // The totals of tests/fixtures/cloudfront-logs/README.md, per tenant, env and day.
    assert_eq!(daily(&app, "acme", "prod", "2026-11-20").await, (5, 5000));
    assert_eq!(daily(&app, "globex", "dev", "2026-11-20").await, (1, 4096));
    assert_eq!(daily(&app, "acme", "prod", "2026-11-21").await, (1, 200));
    assert_eq!(total(&app, "acme", "prod").await, (6, 5200));
    assert_eq!(total(&app, "globex", "dev").await, (1, 4096));

    // A second run finds both files, already counted.
    let again = jobs::metering::run(
        &app.state.metering,
        Trigger::Api,
        RunOptions::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    let logs = &again.report["cdn_logs"];
    assert_eq!(
        (logs["files"].as_u64(), logs["already_ingested"].as_u64()),
        (Some(0), Some(2)),
        "{}",
        again.report
    );
    assert_eq!(total(&app, "acme", "prod").await, (6, 5200));
}

/// Local store: there is no S3 client to read a bucket with; start-up says so, naming both
/// settings, rather than metering nothing.
fn the_local_store_refuses_a_log_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let log_bucket = format!("s3://cairn-prod-logs/{LOG_PREFIX}");
    let settings = Settings::from_vars([
        ("CAIRN_STORAGE", "local"),
        ("CAIRN_DATA_DIR", dir.path().to_str().unwrap()),
        ("CAIRN_LISTEN", "127.0.0.1:0"),
        ("CAIRN_MAX_UPLOAD_BYTES", "1048576"),
        ("CAIRN_CDN_LOG_PREFIX", &log_bucket),
    ])
    .unwrap();
    let err = Config::from_settings(&settings).unwrap_err().to_string();
    assert!(
        err.starts_with("CAIRN_CDN_LOG_PREFIX is invalid")
            && err.contains("s3://cairn-prod-logs/cloudfront/")
            && err.contains("CAIRN_STORAGE=local"),
        "{err}"
    );
    // A key prefix in the local store is still fine.
    let mut local = settings;
    local.set("CAIRN_CDN_LOG_PREFIX", LOG_PREFIX);
    let c = Config::from_settings(&local).unwrap();
    assert_eq!(c.metering.cdn_log_prefix.as_deref(), Some(LOG_PREFIX));
    assert_eq!(c.metering.cdn_log_bucket, None);
}
