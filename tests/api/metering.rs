//! Metering on every backend combination: counters exact through upload, dedup, delete, purge
//! and failed uploads (each step checked against a full recount), reconcile of injected drift,
//! CloudFront log ingest (a file seen twice counts once), quotas and their warnings, the usage
//! API (JSON, CSV, daily series), per-tenant gauges, operator-only access and the CLI.
use cairn::{
    jobs::{self, Trigger},
    lifecycle::SweepOptions,
    metering::{reconcile, RunOptions},
};
use chrono::{DateTime, Duration, Utc};
use entity::{usage, usage_daily};
use reqwest::{Method, StatusCode};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, sha256_hex, Caller, TestApp};

const PNG: &str = "image/png";

async fn usage_of(app: &TestApp, tenant: &str, env: &str) -> usage::Model {
    usage::Entity::find_by_id((tenant.to_owned(), env.to_owned()))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no usage row for {tenant}/{env}"))
}

/// The counters agree with a full recount of the catalog.
async fn assert_no_drift(app: &TestApp, step: &str) {
    let drift = reconcile::reconcile(&app.state.db, false, Utc::now())
        .await
        .unwrap();
    assert!(drift.is_empty(), "after {step}: {drift:?}");
}

/// objects, logical, physical, image bytes, raw bytes.
fn stock(u: &usage::Model) -> (i64, i64, i64, i64, i64) {
    (
        u.objects,
        u.logical_bytes,
        u.physical_bytes,
        u.image_bytes,
        u.raw_bytes,
    )
}

async fn sweep(app: &TestApp, now: DateTime<Utc>) {
    let run = jobs::lifecycle::run(
        &app.state.lifecycle,
        Trigger::Api,
        &SweepOptions::default(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
}

async fn delete(app: &TestApp, who: &Caller, id: &str) {
    let res = app
        .request(who, Method::DELETE, &format!("/artifacts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn counters_are_exact_through_upload_dedup_delete_purge_and_failures() {
    let app = TestApp::spawn().await;
    let who = app.owner("meter", "dev");
    let png = sample(PNG, 1000);
    let l = png.len() as i64;

    // Upload: one live object, stored once.
    let a1 = app.stream_artifact(&who, PNG, &png, json!({})).await;
    let u = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&u), (1, l, l, l, 0));
    assert_eq!((u.uploads, u.upload_bytes, u.dedup_hits), (1, l, 0));
    assert_no_drift(&app, "upload").await;

    // The same bytes streamed again: deduplicated at the end of the upload.
    let a2 = app.stream_artifact(&who, PNG, &png, json!({})).await;
    let u = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&u), (2, 2 * l, l, 2 * l, 0));
    assert_eq!((u.uploads, u.dedup_hits, u.dedup_bytes_saved), (2, 1, l));
    assert_no_drift(&app, "dedup at upload").await;

    // Declared sha256 of stored content: deduplicated at create, nothing uploaded.
    let res = app
        .create_artifact(&who, PNG, &png, json!({ "sha256": sha256_hex(&png) }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let a3: Value = res.json().await.unwrap();
    assert!(a3["upload"].is_null());
    let u = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&u), (3, 3 * l, l, 3 * l, 0));
    assert_eq!(
        (u.uploads, u.dedup_hits, u.dedup_bytes_saved),
        (2, 2, 2 * l)
    );
    assert_no_drift(&app, "dedup at create").await;

    // A raw asset through presign, upload and register.
    let raw = b"raw bytes of a capture".to_vec();
    let r = raw.len() as i64;
    let asset = app.store(&who, "capture.bin", &raw).await;
    let u = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&u), (4, 3 * l + r, l + r, 3 * l, r));
    assert_eq!(u.uploads, 3);
    assert_no_drift(&app, "raw register").await;

    // Failed uploads change nothing: a raw upload whose bytes do not match, and an artifact
    // whose bytes are not the declared media type.
    let before = usage_of(&app, "meter", "dev").await;
    let p = app
        .presign(&who, "bad.bin", "application/octet-stream", b"declared")
        .await;
    app.put_upload(&p, b"declared").await;
    let res = app
        .register(
            &who,
            p["asset_id"].as_str().unwrap(),
            b"different",
            "application/octet-stream",
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .create_artifact(&who, PNG, b"not a png", json!({}))
        .await;
    let created: Value = res.json().await.unwrap();
    let spoof = created["artifact"]["artifact_id"].as_str().unwrap();
    let res = app.put_content(&who, spoof, b"not a png").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let after = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&after), stock(&before));
    assert_eq!(after.uploads, before.uploads);
    assert_no_drift(&app, "failed uploads").await;

    // Download URLs: GET /artifacts/{id} and a raw presign-download each issue one.
    let before = usage_of(&app, "meter", "dev").await;
    let id1 = a1["artifact_id"].as_str().unwrap();
    assert_eq!(
        app.get(&who, &format!("/artifacts/{id1}")).await.status(),
        StatusCode::OK
    );
    app.download_url(&who, asset["asset_id"].as_str().unwrap())
        .await;
    // GET /artifacts/{id}/content: a redirect to a URL (S3) or the bytes served (local).
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/artifacts/{id1}/content", app.base))
        .bearer_auth(who.token.as_deref().unwrap())
        .header("x-tenant-id", "meter")
        .header("x-env", "dev")
        .send()
        .await
        .unwrap();
    let redirected = res.status().is_redirection();
    assert!(res.status().is_success() || redirected);
    let body = res.bytes().await.unwrap();
    // Reads write nothing to the catalog; the counts are recorded by the next flush.
    assert_eq!(usage_of(&app, "meter", "dev").await, before);
    app.state.flush_usage().await.unwrap();
    let u = usage_of(&app, "meter", "dev").await;
    // S3: the redirect is a URL handed out, and its bytes go from the store, not from Cairn.
    // Local: Cairn serves the bytes itself, which is a download served and no URL.
    let (urls, served) = if redirected {
        ((3, 2 * l + r), (0, 0))
    } else {
        assert_eq!(body.len() as i64, l);
        ((2, l + r), (1, l))
    };
    assert_eq!((u.download_urls, u.download_url_bytes), urls);
    assert_eq!((u.downloads, u.download_bytes), served);

    // Delete: the item leaves the stock; its bytes stay stored until the purge.
    delete(&app, &who, id1).await;
    let u = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&u), (3, 2 * l + r, l + r, 2 * l, r));
    assert_no_drift(&app, "delete").await;

    // Purge of one of three items sharing a blob: the object stays.
    let later = Utc::now() + Duration::days(8);
    sweep(&app, later).await;
    let u = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&u), (3, 2 * l + r, l + r, 2 * l, r));
    assert_eq!((u.purges, u.reclaimed_bytes), (1, 0));
    assert_no_drift(&app, "first purge").await;

    // Purging the last references frees the physical bytes.
    delete(&app, &who, a2["artifact_id"].as_str().unwrap()).await;
    delete(&app, &who, a3["artifact"]["artifact_id"].as_str().unwrap()).await;
    sweep(&app, later + Duration::days(8)).await;
    let u = usage_of(&app, "meter", "dev").await;
    assert_eq!(stock(&u), (1, r, r, 0, r));
    assert_eq!((u.purges, u.reclaimed_bytes), (3, l));
    assert_no_drift(&app, "last purge").await;

    // The day's activity was counted as it happened.
    let today = usage_daily::Entity::find_by_id((
        "meter".to_owned(),
        "dev".to_owned(),
        Utc::now().format("%Y-%m-%d").to_string(),
    ))
    .one(&app.state.db)
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (
            today.uploads,
            today.dedup_hits,
            today.download_urls,
            today.downloads
        ),
        (3, 2, urls.0, served.0)
    );

    // Other scopes were not touched.
    let rows = usage::Entity::find().all(&app.state.db).await.unwrap();
    assert!(rows
        .iter()
        .all(|u| u.tenant_id == "meter" && u.env == "dev"));
}

#[tokio::test]
async fn reconcile_reports_injected_drift_and_fixes_it_on_request() {
    let app = TestApp::spawn().await;
    let who = app.owner("drift", "prod");
    let png = sample(PNG, 500);
    app.stream_artifact(&who, PNG, &png, json!({})).await;
    assert_no_drift(&app, "upload").await;

    usage::Entity::update_many()
        .col_expr(
            usage::Column::Objects,
            Expr::col(usage::Column::Objects).add(5),
        )
        .col_expr(usage::Column::PhysicalBytes, Expr::value(1))
        .filter(usage::Column::TenantId.eq("drift"))
        .exec(&app.state.db)
        .await
        .unwrap();

    let drift = reconcile::reconcile(&app.state.db, false, Utc::now())
        .await
        .unwrap();
    let mut found: Vec<(String, i64, i64)> = drift
        .iter()
        .map(|d| (d.counter.clone(), d.counted, d.actual))
        .collect();
    found.sort();
    let l = png.len() as i64;
    assert_eq!(
        found,
        vec![("objects".into(), 6, 1), ("physical_bytes".into(), 1, l)]
    );
    assert_eq!(
        usage_of(&app, "drift", "prod").await.objects,
        6,
        "report only"
    );

    // The API's metering run fixes it when asked.
    let res = app
        .client
        .post(format!("{}/admin/metering/run?fix_drift=true", app.base))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["report"]["drift"].as_array().unwrap().len(), 2);
    assert_eq!(run["report"]["drift_fixed"], true);
    let u = usage_of(&app, "drift", "prod").await;
    assert_eq!((u.objects, u.physical_bytes), (1, l));
    assert_no_drift(&app, "fix").await;
}

#[tokio::test]
async fn storage_samples_make_daily_averages_peaks_and_gb_days() {
    let app = TestApp::spawn().await;
    let who = app.owner("sampled", "dev");
    let png = sample(PNG, 2000);
    let l = png.len() as i64;
    let day = Utc::now();
    let m = &app.state.metering;
    jobs::metering::run(m, Trigger::Api, RunOptions::default(), day)
        .await
        .unwrap();
    app.stream_artifact(&who, PNG, &png, json!({})).await;
    jobs::metering::run(m, Trigger::Api, RunOptions::default(), day)
        .await
        .unwrap();
    let d = usage_daily::Entity::find_by_id((
        "sampled".to_owned(),
        "dev".to_owned(),
        day.format("%Y-%m-%d").to_string(),
    ))
    .one(&app.state.db)
    .await
    .unwrap()
    .unwrap();
    // The first run had no row for this tenant yet: one sample, of l bytes.
    assert_eq!(
        (d.samples, d.stored_bytes_sum, d.stored_bytes_peak),
        (1, l, l)
    );
    jobs::metering::run(m, Trigger::Api, RunOptions::default(), day)
        .await
        .unwrap();
    let res = app
        .client
        .get(format!("{}/admin/usage/sampled", app.base))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let s: Value = res.json().await.unwrap();
    let days = s["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{s}");
    assert_eq!(days[0]["stored_bytes_avg"], l);
    assert_eq!(days[0]["stored_bytes_peak"], l);
    assert_eq!(days[0]["uploads"], 1);
    let gb_days = days[0]["gb_days"].as_f64().unwrap();
    assert!((gb_days - l as f64 / 1e9).abs() < 1e-12, "{gb_days}");
    assert_eq!(s["months"].as_array().unwrap().len(), 1);

    // A scheduled tick is run once, however many replicas fire it.
    let tick = Trigger::Schedule(day);
    jobs::metering::run(m, tick, RunOptions::default(), day)
        .await
        .unwrap();
    let again = jobs::metering::run(m, tick, RunOptions::default(), day).await;
    assert!(matches!(again, Err(jobs::RunError::TickTaken)), "{again:?}");
}

/// Writes a fixture log file into the store under `key`.
async fn put_log(app: &TestApp, key: &str, bytes: Vec<u8>) {
    let key = cairn::domain::ObjectKey::parse(key).unwrap();
    app.put_object(&key, "application/gzip", "private", bytes)
        .await;
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/cloudfront-logs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn cloudfront_logs_are_ingested_once_per_file() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_CDN_LOG_PREFIX", "cdn-logs");
    })
    .await;
    let f1 = "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz";
    let f2 = "E2EXAMPLE123.2026-11-21-09.e5f6a7b8.gz";
    put_log(&app, &format!("cdn-logs/{f1}"), fixture(f1)).await;
    // Something under the prefix that is not a log file is left alone.
    put_log(&app, "cdn-logs/README.txt", b"not a log".to_vec()).await;
    let m = &app.state.metering;
    let first = jobs::metering::run(m, Trigger::Api, RunOptions::default(), Utc::now())
        .await
        .unwrap();
    assert_eq!(first.report["cdn_logs"]["files"], 1, "{}", first.report);
    assert_eq!(first.report["cdn_logs"]["skipped"], 2);

    // The second run sees the first file again (and a new one): the first adds nothing.
    put_log(&app, &format!("cdn-logs/{f2}"), fixture(f2)).await;
    let second = jobs::metering::run(m, Trigger::Api, RunOptions::default(), Utc::now())
        .await
        .unwrap();
    assert_eq!(second.report["cdn_logs"]["files"], 1, "{}", second.report);
    assert_eq!(second.report["cdn_logs"]["already_ingested"], 1);
    let third = jobs::metering::run(m, Trigger::Api, RunOptions::default(), Utc::now())
        .await
        .unwrap();
    assert_eq!(third.report["cdn_logs"]["files"], 0);
    assert_eq!(third.report["cdn_logs"]["already_ingested"], 2);

    let day = |t: &str, e: &str, d: &str| {
        let db = app.state.db.clone();
        let key = (t.to_owned(), e.to_owned(), d.to_owned());
        async move {
            let r = usage_daily::Entity::find_by_id(key)
                .one(&db)
                .await
                .unwrap()
                .unwrap();
            (r.cdn_requests, r.cdn_bytes)
        }
    };
    // The totals of tests/fixtures/cloudfront-logs/README.md.
    assert_eq!(day("acme", "prod", "2026-11-20").await, (5, 5000));
    assert_eq!(day("globex", "dev", "2026-11-20").await, (1, 4096));
    assert_eq!(day("acme", "prod", "2026-11-21").await, (1, 200));
    let u = usage_of(&app, "acme", "prod").await;
    assert_eq!((u.cdn_requests, u.cdn_bytes), (6, 5200));
    // CloudFront's requests are downloads served; no URL was handed out.
    assert_eq!((u.downloads, u.download_bytes), (6, 5200));
    assert_eq!((u.download_urls, u.download_url_bytes), (0, 0));

    // The range query prices the egress.
    let res = app
        .client
        .get(format!(
            "{}/admin/usage?tenant=acme&from=2026-11-20&to=2026-11-20",
            app.base
        ))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    let row = &v["usage"][0];
    assert_eq!(
        (row["cdn_requests"].as_i64(), row["cdn_bytes"].as_i64()),
        (Some(5), Some(5000))
    );
    assert_eq!(
        (row["downloads"].as_i64(), row["download_bytes"].as_i64()),
        (Some(5), Some(5000))
    );
    let p = app.state.config.metering.prices;
    let expected = 5000.0 / 1e9 * p.egress_gb + 5.0 / 1000.0 * p.requests_per_1000;
    assert!((row["estimated_cost"].as_f64().unwrap() - expected).abs() < 1e-6);
}

async fn put_quota(app: &TestApp, tenant: &str, body: Value) -> reqwest::Response {
    app.client
        .put(format!("{}/admin/tenants/{tenant}/quota", app.base))
        .bearer_auth(app.operator_token())
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `/metrics` as the holder of `CAIRN_METRICS_TOKEN` sees it (per-tenant series included).
async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(crate::helpers::METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of a metric line naming all of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lb| l.contains(lb)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn quotas_refuse_with_usage_and_limit_and_warn_at_80_and_95_percent() {
    let app = TestApp::spawn().await;
    let who = app.owner("capped", "dev");
    let res = put_quota(&app, "capped", json!({ "max_bytes": 1000 })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let q: Value = res.json().await.unwrap();
    assert_eq!(
        q,
        json!({"tenant_id": "capped", "max_bytes": 1000, "max_objects": null, "envs": {}})
    );

    let tenant = "tenant=\"capped\"";
    let upload = |n: usize, seed: u8| {
        let mut b = sample(PNG, n);
        let last = b.len() - 1;
        b[last] = seed;
        b
    };
    app.stream_artifact(&who, PNG, &upload(700, 1), json!({}))
        .await;
    let m = metrics(&app).await;
    assert_eq!(metric(&m, "cairn_quota_warnings_total", &[tenant]), None);
    app.stream_artifact(&who, PNG, &upload(150, 2), json!({}))
        .await;
    let m = metrics(&app).await;
    assert_eq!(
        metric(&m, "cairn_quota_warnings_total", &[tenant, "level=\"80\""]),
        Some(1.0)
    );
    // Raw assets count against the same limit.
    app.store(&who, "x.bin", &[7u8; 100]).await;
    let m = metrics(&app).await;
    assert_eq!(
        metric(&m, "cairn_quota_warnings_total", &[tenant, "level=\"95\""]),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "cairn_tenant_quota_bytes_ratio", &[tenant]),
        Some(0.95)
    );

    // 950 of 1000 used: 60 more bytes are refused, at create, at presign and at upload.
    let before = app.footprint().await;
    let res = app
        .create_artifact(&who, PNG, &upload(60, 3), json!({}))
        .await;
    let p = problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
    assert_eq!(
        p["quota"],
        json!({"tenant_id": "capped", "env": null, "measure": "bytes", "used": 950, "requested": 60, "limit": 1000})
    );
    assert!(p["detail"].as_str().unwrap().contains("950"), "{p}");
    let res = app
        .post(
            &who,
            "/storage/raw/presign-upload",
            &json!({"filename": "y.bin", "content_type": "application/octet-stream", "size_bytes": 60}),
        )
        .await;
    problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
    let res = app
        .request(
            &who,
            Method::POST,
            "/artifacts/preview?run_id=r1&filename=p.png",
        )
        .header("content-type", PNG)
        .body(upload(60, 4))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
    assert_eq!(app.footprint().await, before, "a refusal writes nothing");
    // What still fits is admitted.
    app.stream_artifact(&who, PNG, &upload(50, 5), json!({}))
        .await;

    // Per env: one object in prod; dev is not limited by it.
    let res = put_quota(
        &app,
        "capped",
        json!({ "envs": { "prod": { "max_objects": 1 } } }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let prod = app.owner("capped", "prod");
    app.stream_artifact(&prod, PNG, &upload(10, 6), json!({}))
        .await;
    let res = app
        .create_artifact(&prod, PNG, &upload(10, 7), json!({}))
        .await;
    let p = problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
    assert_eq!(p["quota"]["env"], "prod");
    assert_eq!(p["quota"]["measure"], "objects");
    app.stream_artifact(&who, PNG, &upload(10, 8), json!({}))
        .await;

    // An upload admitted at create is refused at upload when the quota filled meanwhile.
    put_quota(&app, "capped", json!({ "max_objects": 100 })).await;
    let res = app
        .create_artifact(&who, PNG, &upload(10, 9), json!({}))
        .await;
    let created: Value = res.json().await.unwrap();
    let id = created["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    put_quota(&app, "capped", json!({ "max_bytes": 1 })).await;
    let res = app.put_content(&who, &id, &upload(10, 9)).await;
    problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
}

#[tokio::test]
async fn quota_input_is_validated_and_nothing_is_written_on_refusal() {
    let app = TestApp::spawn().await;
    for (body, code) in [
        (json!({ "max_bytes": -1 }), "invalid_quota"),
        (
            json!({ "envs": { "qa": { "max_bytes": 1 } } }),
            "invalid_quota",
        ),
        (json!({ "max_bytez": 1 }), "invalid_request"),
        (json!({ "max_bytes": "lots" }), "invalid_request"),
    ] {
        let res = put_quota(&app, "someone", body.clone()).await;
        let status = res.status();
        let p: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {p}");
        assert_eq!(p["code"], code, "{body}: {p}");
    }
    let res = put_quota(&app, "Not_A_Tenant", json!({ "max_bytes": 1 })).await;
    problem(res, StatusCode::BAD_REQUEST, "invalid_tenant").await;
    let res = app
        .client
        .put(format!("{}/admin/tenants/someone/quota", app.base))
        .bearer_auth(app.operator_token())
        .header("content-type", "application/json")
        .body("{\"max_bytes\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app
        .client
        .get(format!("{}/admin/quotas", app.base))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["quotas"], json!([]), "refused quotas are not stored");
}

#[tokio::test]
async fn usage_api_answers_json_csv_and_filters() {
    let app = TestApp::spawn().await;
    let a = app.owner("alpha", "dev");
    let b = app.owner("beta", "prod");
    app.stream_artifact(&a, PNG, &sample(PNG, 300), json!({}))
        .await;
    app.store(&b, "b.bin", b"beta bytes").await;
    let op = app.operator_token();
    let get = |path: String, accept: Option<&'static str>| {
        let mut r = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&op);
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        r.send()
    };
    let v: Value = get("/admin/usage".into(), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = v["usage"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["tenant_id"], "alpha");
    for field in [
        "objects",
        "logical_bytes",
        "physical_bytes",
        "uploads",
        "upload_bytes",
        "download_urls",
        "download_url_bytes",
        "downloads",
        "download_bytes",
        "dedup_hits",
        "dedup_bytes_saved",
    ] {
        assert!(rows[0][field].is_i64(), "{field} in {}", rows[0]);
    }
    assert_eq!(rows[1]["bytes_by_kind"]["raw"], 10);
    let v: Value = get("/admin/usage?tenant=beta".into(), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["usage"].as_array().unwrap().len(), 1);
    let v: Value = get("/admin/usage?env=dev".into(), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["usage"][0]["tenant_id"], "alpha");
    assert_eq!(v["usage"].as_array().unwrap().len(), 1);

    // CSV: a header and one line per row, the same numbers as the JSON.
    let res = get("/admin/usage".into(), Some("text/csv")).await.unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], cairn::metering::report::csv_header());
    let header: Vec<&str> = lines[0].split(',').collect();
    let alpha: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(header.len(), alpha.len());
    let col = |name: &str| alpha[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("tenant_id"), "alpha");
    assert_eq!(col("objects"), "1");
    assert_eq!(
        col("image_bytes"),
        rows[0]["bytes_by_kind"]["image"].to_string()
    );
    assert_eq!(col("physical_bytes"), rows[0]["physical_bytes"].to_string());

    // Bad filters are 400s with a stable code.
    for (path, code) in [
        (
            "/admin/usage?from=yesterday&to=2026-01-01",
            "invalid_request",
        ),
        ("/admin/usage?to=2026-01-01", "invalid_request"),
        (
            "/admin/usage?from=2026-02-01&to=2026-01-01",
            "invalid_request",
        ),
        (
            "/admin/usage?from=2020-01-01&to=2026-01-01",
            "invalid_request",
        ),
        ("/admin/usage?tenant=BAD!", "invalid_tenant"),
        ("/admin/usage?env=qa", "invalid_scope"),
        ("/admin/usage?colour=red", "invalid_request"),
        ("/admin/usage/BAD!", "invalid_tenant"),
        ("/admin/usage/alpha?from=2026-13-01", "invalid_request"),
    ] {
        let res = get(path.into(), None).await.unwrap();
        problem(res, StatusCode::BAD_REQUEST, code).await;
    }
    // A tenant without usage has an empty series, not an error.
    let v: Value = get("/admin/usage/nobody".into(), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["days"], json!([]));
}

#[tokio::test]
async fn metrics_carry_per_tenant_gauges() {
    let app = TestApp::spawn().await;
    let who = app.owner("gauged", "staging");
    let png = sample(PNG, 640);
    app.stream_artifact(&who, PNG, &png, json!({})).await;
    let m = metrics(&app).await;
    let t = "tenant=\"gauged\"";
    assert_eq!(metric(&m, "cairn_tenant_objects", &[t]), Some(1.0));
    assert_eq!(
        metric(&m, "cairn_tenant_physical_bytes", &[t]),
        Some(png.len() as f64)
    );
    // Tenants only: no env or other labels on the gauges.
    for line in m.lines().filter(|l| l.starts_with("cairn_tenant_")) {
        assert!(!line.contains("env="), "{line}");
    }
}

#[tokio::test]
async fn every_metering_route_is_operator_only() {
    let app = TestApp::spawn().await;
    let owner = app.token("alice", &[("acme", cairn::auth::Role::Owner)]);
    let routes: [(Method, &str); 7] = [
        (Method::GET, "/admin/usage"),
        (Method::GET, "/admin/usage/acme"),
        (Method::PUT, "/admin/tenants/acme/quota"),
        (Method::GET, "/admin/tenants/acme/quota"),
        (Method::GET, "/admin/quotas"),
        (Method::POST, "/admin/metering/run"),
        (Method::GET, "/admin/usage?tenant=acme"),
    ];
    for (method, path) in routes {
        let url = format!("{}{path}", app.base);
        let res = app
            .client
            .request(method.clone(), &url)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let res = app
            .client
            .request(method.clone(), &url)
            .bearer_auth(&owner)
            .header("x-tenant-id", "acme")
            .header("x-env", "dev")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert!(
        usage::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty()
            && entity::quota::Entity::find()
                .all(&app.state.db)
                .await
                .unwrap()
                .is_empty(),
        "refused requests write nothing"
    );
    // The dashboard page itself is public and holds no data: it signs in for the API.
    let res = app
        .client
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"token\""), "a sign-in field");
}

#[tokio::test]
async fn the_cli_prints_usage_as_a_table_csv_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let cairn = |args: &[&str]| {
        crate::helpers::cairn_command(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    // An embedded catalog with one tenant's usage, written through the library.
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
        let d = cairn::usage::Delta::live(None, 1234).uploaded(1234, false);
        cairn::usage::record(&db, "clitenant", "dev", Utc::now(), &d)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    let out = cairn(&["usage"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("TENANT"), "{stdout}");
    assert!(stdout.contains("clitenant"), "{stdout}");
    assert!(stdout.contains("1.2 kB"), "{stdout}");
    let out = cairn(&["usage", "--csv", "--tenant", "clitenant"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("tenant_id,env,objects"), "{csv}");
    assert!(csv.contains("clitenant,dev,1,1234,1234"), "{csv}");
    // The counters say one raw asset exists; the catalog has none: drift, exit 3, then fixed.
    let out = cairn(&["usage", "--reconcile"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cairn(&["usage", "--reconcile", "--fix"]);
    assert!(out.status.success());
    let out = cairn(&["usage", "--reconcile"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cairn(&["usage", "--from", "someday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
    let help = cairn(&["usage", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for s in [
        "--tenant",
        "--from",
        "--to",
        "--csv",
        "--reconcile",
        "--fix",
    ] {
        assert!(help.contains(s), "{s} missing from --help");
    }
}
