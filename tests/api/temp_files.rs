//! Leftovers of uploads a killed process interrupted (issue 14 §7): the local store's temp files.
//! A server starting up removes those not modified for `ABANDONED_TEMP_FILE_AGE` and keeps
//! fresher ones (CLI commands remove none); the sweep's orphan step reports those older than the
//! pending TTL and removes them with `fix_orphans`. Temp files are the local store's own, so these
//! tests run on this run's catalog with a local store whatever `CAIRN_TEST_STORAGE` says.
use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use cairn::{
    config::{Config, Provision, Settings, StorageConfig},
    jobs::{self, Trigger},
    lifecycle::{report::Tally, Report, SweepOptions},
    Application, ABANDONED_TEMP_FILE_AGE,
};
use chrono::Utc;

use crate::helpers::TestApp;

/// This run's catalog, the local store.
fn local(s: &mut Settings) {
    s.set("CAIRN_STORAGE", "local");
    s.storage.raw_bucket = None;
    s.storage.aws_endpoint_url_s3 = None;
    s.set("CAIRN_S3_FORCE_PATH_STYLE", "false");
}

/// A test app with a local store, and the settings it was built from.
async fn spawn_local() -> (TestApp, Settings) {
    let mut settings = None;
    let app = TestApp::spawn_with(|s| {
        local(s);
        settings = Some(s.clone());
    })
    .await;
    (app, settings.unwrap())
}

fn tmp_dir(app: &TestApp) -> PathBuf {
    match &app.state.config.storage {
        StorageConfig::Local { root, .. } => root.join("tmp"),
        StorageConfig::S3(_) => panic!("these tests need the local store"),
    }
}

/// A temp file as an upload leaves it: `len` bytes, last written `age` ago.
fn leave(dir: &Path, name: &str, len: u64, age: Duration) -> PathBuf {
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(len).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
    path
}

#[tokio::test]
async fn a_restarted_server_removes_abandoned_temp_files_and_keeps_fresh_ones() {
    let (app, settings) = spawn_local().await;
    let tmp = tmp_dir(&app);
    let killed = leave(
        &tmp,
        "0190f000-0000-7000-8000-00000000000a",
        100 << 10,
        Duration::from_secs(3600),
    );
    let killed_meta = leave(
        &tmp,
        "0190f000-0000-7000-8000-00000000000a.json",
        120,
        ABANDONED_TEMP_FILE_AGE + Duration::from_secs(60),
    );
    let fresh = leave(
        &tmp,
        "0190f000-0000-7000-8000-00000000000b",
        64,
        Duration::from_secs(30),
    );

    // A command opening the store meanwhile (a server may be running) removes nothing.
    let config = Config::from_settings(&settings)
        .unwrap()
        .provision(Provision::Create)
        .unwrap();
    cairn::lifecycle_for_cli(&config).await.unwrap();
    cairn::usage_catalog_for_cli(&config).await.unwrap();
    assert!(killed.exists() && killed_meta.exists() && fresh.exists());

    // A server starting on the same data dir and catalog does.
    let restarted = Application::build(config).await.unwrap();
    assert!(!killed.exists(), "abandoned for an hour");
    assert!(!killed_meta.exists(), "abandoned past the age");
    assert!(fresh.exists(), "maybe an upload still going on");
    drop(restarted);
}

async fn sweep(app: &TestApp, now: chrono::DateTime<Utc>, opts: SweepOptions) -> Report {
    let run = jobs::lifecycle::run(&app.state.lifecycle, Trigger::Api, &opts, now)
        .await
        .unwrap();
    assert_ne!(run.status, "failed", "{:?}", run.error);
    serde_json::from_value(run.report).unwrap()
}

#[tokio::test]
async fn the_sweep_reports_orphan_temp_files_and_removes_them_on_request() {
    let (app, _) = spawn_local().await;
    let tmp = tmp_dir(&app);
    let name = "0190f000-0000-7000-8000-00000000000c";
    let data = leave(&tmp, name, 3000, Duration::from_secs(60));
    let meta = leave(&tmp, &format!("{name}.json"), 100, Duration::from_secs(60));

    let r = sweep(&app, Utc::now(), SweepOptions::default()).await;
    assert_eq!(
        r.orphan_temp_files.found.count, 0,
        "younger than the pending TTL: maybe an upload"
    );
    let later = Utc::now() + chrono::Duration::hours(25);
    let r = sweep(&app, later, SweepOptions::default()).await;
    let both = Tally {
        count: 2,
        bytes: 3100,
    };
    assert_eq!(r.orphan_temp_files.found, both);
    assert_eq!(
        r.orphan_temp_files.sample,
        vec![name.to_owned(), format!("{name}.json")]
    );
    assert_eq!(r.orphan_temp_files.removed, Tally::default());
    assert_eq!(
        r.orphans.found,
        Tally::default(),
        "temp files are not objects"
    );
    assert!(r.table(false).contains("orphan temp files found"));
    assert!(data.exists() && meta.exists());

    let fix = SweepOptions {
        fix_orphans: true,
        ..Default::default()
    };
    let dry = SweepOptions {
        dry_run: true,
        ..fix.clone()
    };
    let r = sweep(&app, later, dry).await;
    assert_eq!(r.orphan_temp_files.removed, both, "would remove");
    assert!(data.exists() && meta.exists(), "a dry run removes nothing");

    let r = sweep(&app, later, fix.clone()).await;
    assert_eq!(r.orphan_temp_files.removed, both);
    assert_eq!(r.bytes_reclaimed(), 3100);
    assert!(!data.exists() && !meta.exists());
    let r = sweep(&app, later, fix).await;
    assert_eq!(r.orphan_temp_files, Default::default());
}
