//! Numbers operators bill from, on every backend combination: bytes reclaimed count only what the
//! store held; download URLs handed out and bytes actually served are two measures (URLs counted
//! without a catalog write per read, flushed in batches); a server starting on a day without a
//! storage sample takes one.
use cairn::lifecycle::{self, report::Tally, Report, SweepOptions, Trigger};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Caller, TestApp};

/// A sweep as of `now` through the entry point the schedule, CLI and API use.
async fn sweep_with(app: &TestApp, now: DateTime<Utc>, opts: SweepOptions) -> Report {
    let run = lifecycle::run(&app.state.lifecycle, Trigger::Api, &opts, now)
        .await
        .expect("the sweep runs");
    assert_eq!(run.status, "succeeded", "{:?} {}", run.error, run.report);
    serde_json::from_value(run.report).unwrap()
}

/// `POST /storage/raw/presign-upload` declaring `size` bytes; nothing is uploaded.
async fn presign_raw(app: &TestApp, who: &Caller, filename: &str, size: u64) -> Value {
    let res = app
        .post(
            who,
            "/storage/raw/presign-upload",
            &json!({"filename": filename, "content_type": "application/octet-stream",
                    "size_bytes": size}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    res.json().await.unwrap()
}

/// Abandoned uploads: three presigns whose bytes never came (524,288,023 bytes declared, as in
/// the issue), one whose bytes came but which was never registered, and a large artifact whose
/// upload holds one part on S3 (a multipart upload; the local store takes it in one PUT that never
/// came). Only the uploaded bytes and, on S3, the part count as reclaimed; a dry run says the
/// same; the run's record, the API and the CLI table carry that figure.
#[tokio::test]
async fn bytes_reclaimed_count_only_what_the_store_held() {
    let app = TestApp::spawn_with(|s| s.max_upload_bytes = "600000000".into()).await;
    let acme = app.owner("acme", "dev");
    // Never uploaded: 500 MiB (multipart on S3), 20 and 3 bytes.
    presign_raw(&app, &acme, "huge.bin", 524_288_000).await;
    presign_raw(&app, &acme, "small.bin", 20).await;
    let res = app
        .post(
            &acme,
            "/artifacts",
            &json!({"run_id": "r1", "kind": "image", "filename": "tiny.png",
                    "content_type": "image/png", "size_bytes": 3}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // Uploaded, never registered: these bytes exist.
    let uploaded = b"uploaded, never registered".to_vec();
    let p = app
        .presign(&acme, "partial.bin", "application/octet-stream", &uploaded)
        .await;
    assert_eq!(app.put_upload(&p, &uploaded).await.status(), StatusCode::OK);
    // A 9 MiB video: on S3 a multipart upload, of which one 1000-byte part arrives.
    let res = app
        .post(
            &acme,
            "/artifacts",
            &json!({"run_id": "r1", "kind": "video", "filename": "big.mp4",
                    "content_type": "video/mp4", "size_bytes": 9 * 1024 * 1024}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let big: Value = res.json().await.unwrap();
    let part_bytes: u64 = if app.is_s3() {
        assert_eq!(big["upload"]["method"], "MULTIPART", "{big}");
        let uri = big["artifact"]["uri"].as_str().unwrap();
        let key = uri.split_once("://").unwrap().1.split_once('/').unwrap().1;
        crate::helpers::s3_client()
            .await
            .upload_part()
            .bucket(app.bucket.as_deref().unwrap())
            .key(key)
            .upload_id(big["upload"]["upload_id"].as_str().unwrap())
            .part_number(1)
            .body(vec![7u8; 1000].into())
            .send()
            .await
            .unwrap();
        1000
    } else {
        assert_eq!(big["upload"]["method"], "PUT", "{big}");
        0
    };
    let stored = uploaded.len() as u64;
    let declared = 524_288_000 + 20 + 3 + stored + 9 * 1024 * 1024;

    let when = Utc::now() + Duration::hours(25);
    let dry = SweepOptions {
        dry_run: true,
        ..Default::default()
    };
    let planned = sweep_with(&app, when, dry).await;
    let r = sweep_with(&app, when, SweepOptions::default()).await;
    assert_eq!(planned, r, "a dry run reports what the run does");
    assert_eq!(
        r.abandoned,
        Tally {
            count: 5,
            bytes: declared
        },
        "abandoned items keep their declared sizes"
    );
    assert_eq!(
        r.objects_deleted,
        Tally {
            count: 1,
            bytes: stored
        },
        "one object existed: {r:?}"
    );
    assert_eq!(r.multipart_aborted_bytes, part_bytes, "{r:?}");
    assert_eq!(r.bytes_reclaimed(), stored + part_bytes);
    let line = r
        .table(false)
        .lines()
        .find(|l| l.starts_with("bytes reclaimed"))
        .unwrap()
        .to_owned();
    assert_eq!(
        line.split_whitespace().last(),
        Some((stored + part_bytes).to_string().as_str()),
        "{line}"
    );
    assert_eq!(app.object_count().await, 0);

    // The operator API's runs (the dashboard's source): the real run first.
    let res = app
        .client
        .get(format!("{}/admin/lifecycle/runs", app.base))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{v}");
    for run in runs {
        assert_eq!(run["bytes_reclaimed"], stored + part_bytes, "{run}");
        assert_eq!(run["report"]["objects_deleted"]["bytes"], stored, "{run}");
    }
}
