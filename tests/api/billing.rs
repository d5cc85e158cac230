//! Numbers operators bill from, on every backend combination: bytes reclaimed count only what the
//! store held; download URLs handed out and bytes actually served are two measures (URLs counted
//! without a catalog write per read, flushed in batches); a server starting on a day without a
//! storage sample takes one.
use cairn::{
    jobs::{self, Trigger},
    lifecycle::{report::Tally, Report, SweepOptions},
};
use chrono::{DateTime, Duration, Utc};
use entity::{usage, usage_daily};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::helpers::{sample, Caller, TestApp};

const PNG: &str = "image/png";

/// A sweep as of `now` through the entry point the schedule, CLI and API use.
async fn sweep_with(app: &TestApp, now: DateTime<Utc>, opts: SweepOptions) -> Report {
    let run = jobs::lifecycle::run(&app.state.lifecycle, Trigger::Api, &opts, now)
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
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_UPLOAD_BYTES", "600000000");
    })
    .await;
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

async fn usage_of(db: &sea_orm::DatabaseConnection, tenant: &str, env: &str) -> usage::Model {
    usage::Entity::find_by_id((tenant.to_owned(), env.to_owned()))
        .one(db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no usage row for {tenant}/{env}"))
}

/// Every `usage_daily` row, in key order.
async fn days(db: &sea_orm::DatabaseConnection) -> Vec<usage_daily::Model> {
    let mut rows = usage_daily::Entity::find().all(db).await.unwrap();
    rows.sort_by(|a, b| (&a.tenant_id, &a.env, &a.day).cmp(&(&b.tenant_id, &b.env, &b.day)));
    rows
}

/// A client that does not follow redirects: a 302 is what Cairn answered.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn operator_get(app: &TestApp, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(app.operator_token());
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    let res = r.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res
}

/// Reads hand out URLs (every `GET /artifacts/{id}`, a long-poll, each manifest item, a raw
/// presign-download) and write nothing to the catalog; a flush records them as `download_urls`,
/// and nothing as served. Then bytes go out: what Cairn streams itself (`/o/`, `/cdn/` with a
/// range, `/content` on the local store) counts as `downloads`/`download_bytes`, a 304 counts
/// nothing, and what the store serves behind a presigned URL or a redirect (S3) is not Cairn's.
/// The JSON, CSV and daily series name both measures, and egress is priced from bytes served.
#[tokio::test]
async fn urls_handed_out_and_bytes_served_are_two_measures() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let who = app.owner("bill", "prod");
    let png = sample(PNG, 1500);
    let shown = sample(PNG, 1200);
    let raw_bytes = b"raw capture bytes".to_vec();
    let (l, lp, r) = (png.len() as i64, shown.len() as i64, raw_bytes.len() as i64);
    let a = app.stream_artifact(&who, PNG, &png, json!({})).await;
    app.stream_artifact(&who, PNG, &shown, json!({"visibility": "public"}))
        .await;
    let raw = app.store(&who, "capture.bin", &raw_bytes).await;
    let id = a["artifact_id"].as_str().unwrap();
    let before = usage_of(db, "bill", "prod").await;
    let before_days = days(db).await;

    // Six URLs handed out.
    let mut urls = Vec::new();
    for path in [
        format!("/artifacts/{id}"),
        format!("/artifacts/{id}"),
        format!("/artifacts/{id}?wait=1"),
    ] {
        let res = app.get(&who, &path).await;
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        urls.push(v["url"].as_str().unwrap().to_owned());
    }
    let res = app.get(&who, "/runs/r1/artifacts").await;
    assert_eq!(res.status(), StatusCode::OK);
    let manifest: Value = res.json().await.unwrap();
    let items = manifest["artifacts"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let public_url = items.iter().find(|i| i["visibility"] == "public").unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    app.download_url(&who, raw["asset_id"].as_str().unwrap())
        .await;
    assert_eq!(
        usage_of(db, "bill", "prod").await,
        before,
        "reads write nothing to the catalog"
    );
    assert_eq!(days(db).await, before_days, "nor to the day's row");
    assert_eq!(
        app.state.flush_usage().await.unwrap(),
        1,
        "one scope, one day"
    );
    let u = usage_of(db, "bill", "prod").await;
    assert_eq!((u.download_urls, u.download_url_bytes), (6, 4 * l + lp + r));
    assert_eq!(
        (u.downloads, u.download_bytes),
        (0, 0),
        "a URL is not a download"
    );

    // Bytes going out.
    let res = app.client.get(&urls[0]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap().as_ref(), png.as_slice());
    let res = app
        .client
        .get(&public_url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap().len(), 100);
    let res = app
        .client
        .get(&urls[1])
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // A HEAD sends no body (the store refuses it on a URL signed for GET).
    let res = app.client.head(&urls[2]).send().await.unwrap();
    if !app.is_s3() {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["content-length"],
            png.len().to_string().as_str()
        );
    }
    let res = no_redirects()
        .get(format!("{}/artifacts/{id}/content", app.base))
        .bearer_auth(who.token.as_deref().unwrap())
        .header("x-tenant-id", "bill")
        .header("x-env", "prod")
        .send()
        .await
        .unwrap();
    let redirected = res.status() == StatusCode::FOUND;
    let body = res.bytes().await.unwrap();
    app.state.flush_usage().await.unwrap();
    let u = usage_of(db, "bill", "prod").await;
    let (urls_issued, served) = if app.is_s3() {
        // The store serves presigned URLs and redirects itself; `/content` hands out one more URL.
        assert!(redirected);
        ((7, 5 * l + lp + r), (0, 0))
    } else {
        assert!(!redirected);
        assert_eq!(body.as_ref(), png.as_slice());
        // `/o/` whole, `/cdn/` a 100-byte range, `/content` whole; the 304 and the HEAD sent
        // no bytes.
        ((6, 4 * l + lp + r), (3, 2 * l + 100))
    };
    assert_eq!((u.download_urls, u.download_url_bytes), urls_issued);
    assert_eq!((u.downloads, u.download_bytes), served);

    // The operator API names both measures, in JSON, CSV and the daily series.
    let v: Value = operator_get(&app, "/admin/usage?tenant=bill", None)
        .await
        .json()
        .await
        .unwrap();
    let row = &v["usage"][0];
    assert_eq!(
        (
            row["download_urls"].as_i64(),
            row["download_url_bytes"].as_i64(),
            row["downloads"].as_i64(),
            row["download_bytes"].as_i64()
        ),
        (
            Some(urls_issued.0),
            Some(urls_issued.1),
            Some(served.0),
            Some(served.1)
        ),
        "{row}"
    );
    let text = operator_get(&app, "/admin/usage?tenant=bill", Some("text/csv"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let values: Vec<&str> = lines[1].split(',').collect();
    let col = |name: &str| {
        let i = header.iter().position(|h| *h == name).unwrap();
        values[i].parse::<i64>().unwrap()
    };
    assert_eq!(
        (
            col("download_urls"),
            col("download_url_bytes"),
            col("downloads"),
            col("download_bytes")
        ),
        (urls_issued.0, urls_issued.1, served.0, served.1),
        "{text}"
    );
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let v: Value = operator_get(
        &app,
        &format!("/admin/usage?tenant=bill&from={today}&to={today}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let row = &v["usage"][0];
    assert_eq!(row["download_urls"], urls_issued.0, "{row}");
    assert_eq!(row["downloads"], served.0, "{row}");
    // Priced: egress from bytes served, requests are uploads and downloads served (no storage
    // sample was taken: no GB-days).
    let p = app.state.config.metering.prices;
    let expected =
        served.1 as f64 / 1e9 * p.egress_gb + (3 + served.0) as f64 / 1000.0 * p.requests_per_1000;
    let cost = row["estimated_cost"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-6, "{cost} != {expected}");
    let v: Value = operator_get(&app, "/admin/usage/bill", None)
        .await
        .json()
        .await
        .unwrap();
    let day = &v["days"][0];
    assert_eq!(
        (day["download_urls"].as_i64(), day["downloads"].as_i64()),
        (Some(urls_issued.0), Some(served.0)),
        "{v}"
    );
    let month = &v["months"][0];
    assert_eq!(month["egress_bytes"], served.1, "{v}");
    assert_eq!(month["requests"], 3 + served.0, "{v}");
}

/// An available private artifact of `who`'s scope: its id.
async fn one_artifact(app: &TestApp, who: &Caller) -> String {
    let a = app
        .stream_artifact(who, PNG, &sample(PNG, 700), json!({}))
        .await;
    a["artifact_id"].as_str().unwrap().to_owned()
}

/// Without anyone asking, the server records what its reads counted every
/// `CAIRN_USAGE_FLUSH_SECS`.
#[tokio::test]
async fn the_server_records_counted_reads_every_flush_interval() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_USAGE_FLUSH_SECS", "1");
    })
    .await;
    assert_eq!(
        app.state.config.metering.usage_flush,
        std::time::Duration::from_secs(1)
    );
    let who = app.owner("ticks", "dev");
    let id = one_artifact(&app, &who).await;
    let res = app.get(&who, &format!("/artifacts/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let u = usage_of(&app.state.db, "ticks", "dev").await;
        if u.download_urls == 1 {
            assert_eq!(u.download_url_bytes, 700);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recorded within 30 s of a 1 s flush interval"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(app.state.usage_buffer.is_empty());
}

/// A server stopping records what its reads counted after its last response, before it closes
/// the catalog (the interval here is an hour: only the stop records them).
#[tokio::test]
async fn a_stopping_server_records_what_its_reads_counted() {
    let mut app = TestApp::spawn().await;
    let who = app.owner("stops", "dev");
    let id = one_artifact(&app, &who).await;
    let res = app.get(&who, &format!("/artifacts/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get(&who, "/runs/r1/artifacts").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        usage_of(&app.state.db, "stops", "dev").await.download_urls,
        0
    );
    app.stop().await;
    let db = cairn::connect(&app.state.config).await.unwrap();
    let u = usage_of(&db, "stops", "dev").await;
    assert_eq!((u.download_urls, u.download_url_bytes), (2, 1400));
    db.close().await.ok();
}

/// A client that stops reading: Cairn counts the bytes it handed out before the connection
/// broke (more than the client read, far less than the object), as one download. On S3
/// `/content` is a redirect: a URL handed out and nothing served by Cairn.
#[tokio::test]
async fn an_aborted_download_counts_what_went_out() {
    const SIZE: usize = 32 * 1024 * 1024;
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_UPLOAD_BYTES", "40000000");
    })
    .await;
    let who = app.owner("aborts", "dev");
    let video = sample("video/mp4", SIZE);
    let a = app
        .stream_artifact(&who, "video/mp4", &video, json!({}))
        .await;
    drop(video);
    let id = a["artifact_id"].as_str().unwrap();
    let mut res = no_redirects()
        .get(format!("{}/artifacts/{id}/content", app.base))
        .bearer_auth(who.token.as_deref().unwrap())
        .header("x-tenant-id", "aborts")
        .header("x-env", "dev")
        .send()
        .await
        .unwrap();
    if app.is_s3() {
        assert_eq!(res.status(), StatusCode::FOUND);
    } else {
        assert_eq!(res.status(), StatusCode::OK);
    }
    let mut received = 0usize;
    while received < 256 * 1024 {
        match res.chunk().await.unwrap() {
            Some(c) => received += c.len(),
            None => break,
        }
    }
    drop(res);
    // Until the server has seen the connection go and its count settles.
    let mut last = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let u = loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        app.state.flush_usage().await.unwrap();
        let u = usage_of(&app.state.db, "aborts", "dev").await;
        if last == Some(u.download_bytes) {
            break u;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the count never settled"
        );
        last = Some(u.download_bytes);
    };
    if app.is_s3() {
        assert_eq!(received, 0, "a redirect has no body");
        assert_eq!((u.downloads, u.download_bytes), (0, 0));
        assert_eq!((u.download_urls, u.download_url_bytes), (1, SIZE as i64));
    } else {
        assert_eq!(u.downloads, 1);
        assert!(
            u.download_bytes >= received as i64 && u.download_bytes < SIZE as i64 / 2,
            "counted {} bytes: the client read {received} of {SIZE}",
            u.download_bytes
        );
        assert_eq!(u.download_urls, 0, "Cairn served the bytes: no URL");
    }
}

/// Before this change `downloads`/`download_bytes` held URLs handed out: the migration moves
/// them to `download_urls`/`download_url_bytes`, makes CloudFront's requests the downloads
/// served known so far (Cairn's own start at zero), in `usage` and every `usage_daily` row; down
/// moves the URL counts back.
#[tokio::test]
async fn the_migration_moves_url_counts_to_the_url_measure() {
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, Statement};

    let dir = tempfile::tempdir().unwrap();
    let url = match crate::helpers::backend().as_str() {
        "postgres" => crate::helpers::new_postgres_database().await,
        _ => format!("sqlite://{}/catalog.db?mode=rwc", dir.path().display()),
    };
    let db = sea_orm::Database::connect(&url).await.unwrap();
    // The catalog as it was: every migration before this one (and how many come from it on).
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let before = names
        .iter()
        .position(|n| n == "m20261201_000009_download_urls")
        .expect("the migration is listed");
    let from_it = (names.len() - before) as u32;
    migration::Migrator::up(&db, Some(before as u32))
        .await
        .unwrap();
    let backend = db.get_database_backend();
    for sql in [
        r#"INSERT INTO "usage" (tenant_id, env, uploads, downloads, download_bytes, cdn_requests, cdn_bytes, updated_at)
           VALUES ('acme', 'prod', 4, 7, 7000, 2, 300, '2026-11-30T10:00:00Z')"#,
        r#"INSERT INTO "usage_daily" (tenant_id, env, day, uploads, downloads, download_bytes, cdn_requests, cdn_bytes, updated_at)
           VALUES ('acme', 'prod', '2026-11-30', 4, 5, 5000, 2, 300, '2026-11-30T10:00:00Z')"#,
        r#"INSERT INTO "usage_daily" (tenant_id, env, day, downloads, download_bytes, updated_at)
           VALUES ('acme', 'prod', '2026-11-29', 2, 2000, '2026-11-29T10:00:00Z')"#,
    ] {
        db.execute(Statement::from_string(backend, sql))
            .await
            .unwrap();
    }
    migration::Migrator::up(&db, None).await.unwrap();
    let u = usage_of(&db, "acme", "prod").await;
    assert_eq!(
        (
            u.download_urls,
            u.download_url_bytes,
            u.downloads,
            u.download_bytes,
            u.cdn_requests,
            u.cdn_bytes,
            u.uploads
        ),
        (7, 7000, 2, 300, 2, 300, 4)
    );
    let d: Vec<_> = days(&db)
        .await
        .iter()
        .map(|d| {
            (
                d.day.clone(),
                d.download_urls,
                d.download_url_bytes,
                d.downloads,
                d.download_bytes,
            )
        })
        .collect();
    assert_eq!(
        d,
        vec![
            ("2026-11-29".into(), 2, 2000, 0, 0),
            ("2026-11-30".into(), 5, 5000, 2, 300),
        ]
    );

    migration::Migrator::down(&db, Some(from_it)).await.unwrap();
    let row = db
        .query_one(Statement::from_string(
            backend,
            r#"SELECT downloads, download_bytes FROM "usage""#,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            row.try_get::<i64>("", "downloads").unwrap(),
            row.try_get::<i64>("", "download_bytes").unwrap()
        ),
        (7, 7000)
    );
    db.close().await.ok();
}

/// `cairn usage` names both measures: the table's URLS-ISSUED, DOWNLOADS and SERVED columns, and
/// the CSV's and JSON's fields.
#[tokio::test]
async fn cairn_usage_names_urls_issued_and_bytes_served() {
    use cairn::usage::{record, Delta};

    let dir = tempfile::tempdir().unwrap();
    {
        let s = cairn::config::Settings::from_vars([
            ("CAIRN_DATA_DIR", dir.path().to_str().unwrap()),
            ("CAIRN_STORAGE", "local"),
            ("CAIRN_LISTEN", "127.0.0.1:0"),
            ("CAIRN_MAX_UPLOAD_BYTES", "1000"),
        ])
        .unwrap();
        // As `cairn serve` leaves the data dir: with its generated secrets.
        let config = cairn::config::Config::from_settings(&s)
            .unwrap()
            .provision(cairn::config::Provision::Create)
            .unwrap();
        let db = cairn::connect(&config).await.unwrap();
        cairn::migrate(&db).await.unwrap();
        for d in [
            Delta::urls_issued(5, 5000),
            Delta::served(2, 1500),
            Delta::cdn_served(1, 100),
        ] {
            record(&db, "clibill", "prod", Utc::now(), &d)
                .await
                .unwrap();
        }
        db.close().await.unwrap();
    }
    let cairn = |args: &[&str]| {
        let out = crate::helpers::cairn_command(dir.path())
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let table = cairn(&["usage"]);
    let lines: Vec<&str> = table.lines().collect();
    let (header, row) = (
        lines[1],
        *lines.iter().find(|l| l.starts_with("clibill")).unwrap(),
    );
    // Columns are right-aligned: a value lies between the end of the previous heading and the
    // end of its own.
    let at = |name: &str| {
        let end = header.find(name).unwrap() + name.len();
        let start = header[..end - name.len()].trim_end().len();
        row[start..end].trim()
    };
    assert_eq!(at("URLS-ISSUED"), "5", "{table}");
    assert_eq!(at("DOWNLOADS"), "3", "{table}");
    assert_eq!(at("SERVED"), "1.6 kB", "{table}");
    assert_eq!(at("CDN"), "100 B", "{table}");
    assert!(
        table.contains("URLS-ISSUED: download URLs handed out"),
        "{table}"
    );
    let csv = cairn(&["usage", "--csv"]);
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let values: Vec<&str> = lines[1].split(',').collect();
    let col = |name: &str| values[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(
        (
            col("download_urls"),
            col("download_url_bytes"),
            col("downloads"),
            col("download_bytes"),
            col("cdn_bytes")
        ),
        ("5", "5000", "3", "1600", "100"),
        "{csv}"
    );
    let json: Value = serde_json::from_str(&cairn(&["usage", "--json"])).unwrap();
    assert_eq!(json[0]["download_urls"], 5);
    assert_eq!(json[0]["download_bytes"], 1600);
}

/// Today's `usage_daily` row of a tenant+env.
async fn today_of(db: &sea_orm::DatabaseConnection, tenant: &str, env: &str) -> usage_daily::Model {
    let day = Utc::now().format("%Y-%m-%d").to_string();
    usage_daily::Entity::find_by_id((tenant.to_owned(), env.to_owned(), day))
        .one(db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no row of today for {tenant}/{env}"))
}

/// A server starting on a day without a storage sample takes one: a scope whose day has only
/// activity gets one (stored bytes and GB-days are not 0 until the hourly job), a scope already
/// sampled that day is left alone.
#[tokio::test]
async fn a_server_starting_samples_storage_when_the_day_has_no_sample() {
    let mut app = TestApp::spawn().await;
    let sampled = app.owner("sampled", "dev");
    let fresh = app.owner("fresh", "dev");
    app.stream_artifact(&sampled, PNG, &sample(PNG, 900), json!({}))
        .await;
    cairn::jobs::metering::run(
        &app.state.metering,
        Trigger::Api,
        cairn::metering::RunOptions::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    app.stream_artifact(&fresh, PNG, &sample(PNG, 800), json!({}))
        .await;
    let before = today_of(&app.state.db, "fresh", "dev").await;
    assert_eq!((before.uploads, before.samples), (1, 0), "activity only");
    let config = app.state.config.clone();
    app.stop().await;

    let restarted = cairn::Application::build(config).await.unwrap();
    let addr = restarted.local_addr();
    let state = restarted.state();
    tokio::spawn(restarted.run_until(std::future::pending()));
    let db = &state.db;
    let f = today_of(db, "fresh", "dev").await;
    assert_eq!(
        (f.samples, f.stored_bytes_sum, f.stored_bytes_peak),
        (1, 800, 800)
    );
    assert_eq!((f.objects, f.logical_bytes, f.uploads), (1, 800, 1));
    let s = today_of(db, "sampled", "dev").await;
    assert_eq!(
        (s.samples, s.stored_bytes_sum),
        (1, 900),
        "already sampled today"
    );
    // The operator API reads the day's stored bytes and GB-days now.
    let v: Value = app
        .client
        .get(format!("http://{addr}/admin/usage/fresh"))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["days"][0]["stored_bytes_avg"], 800, "{v}");
    let gb_days = v["days"][0]["gb_days"].as_f64().unwrap();
    assert!((gb_days - 800.0 / 1e9).abs() < 1e-12, "{gb_days}");
}
