//! Quotas hold (issue 14 §4) on every backend combination: an upload in progress counts against
//! the limits from presign/create until it fails, is abandoned or settles; admissions that
//! race cannot pass a limit together, nor can settles of items admitted before the limit was
//! lowered. A refusal is a 403 `quota_exceeded` with the `quota` member and writes nothing.
use cairn::{
    jobs::{self, Trigger},
    lifecycle::SweepOptions,
};
use chrono::{Duration, Utc};
use entity::usage;
use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, sha256_hex, Caller, TestApp};

const PNG: &str = "image/png";
const BIN: &str = "application/octet-stream";

async fn put_quota(app: &TestApp, tenant: &str, body: Value) {
    let res = app
        .client
        .put(format!("{}/admin/tenants/{tenant}/quota", app.base))
        .bearer_auth(app.operator_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
}

/// `n` bytes of PNG (Cairn sniffs the signature) made distinct by `seed`.
fn png(n: usize, seed: u8) -> Vec<u8> {
    let mut b = sample(PNG, n);
    let last = b.len() - 1;
    b[last] = seed;
    b
}

/// `n` distinct raw bytes.
fn raw(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

async fn presign(app: &TestApp, who: &Caller, bytes: &[u8]) -> Response {
    app.post(
        who,
        "/storage/raw/presign-upload",
        &json!({"filename": "f.bin", "content_type": BIN, "size_bytes": bytes.len()}),
    )
    .await
}

async fn json_of(res: Response, status: StatusCode) -> Value {
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn create(app: &TestApp, who: &Caller, bytes: &[u8]) -> Value {
    json_of(
        app.create_artifact(who, PNG, bytes, json!({})).await,
        StatusCode::CREATED,
    )
    .await
}

async fn preview(app: &TestApp, who: &Caller, bytes: &[u8]) -> Response {
    app.request(
        who,
        Method::POST,
        "/artifacts/preview?run_id=r1&filename=p.png",
    )
    .header("content-type", PNG)
    .body(bytes.to_vec())
    .send()
    .await
    .unwrap()
}

async fn complete(app: &TestApp, who: &Caller, id: &str) -> Response {
    app.post(who, &format!("/artifacts/{id}/complete"), &json!({}))
        .await
}

fn artifact_id(created: &Value) -> String {
    created["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status(app: &TestApp, who: &Caller, path: &str) -> String {
    let v = json_of(app.get(who, path).await, StatusCode::OK).await;
    v["status"].as_str().unwrap().to_owned()
}

/// Asserts a quota refusal and its `quota` member.
async fn refused(res: Response, quota: Value) {
    let p = problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
    assert_eq!(p["quota"], quota, "{p}");
}

fn bytes_quota(tenant: &str, env: Option<&str>, used: i64, requested: i64, limit: i64) -> Value {
    json!({"tenant_id": tenant, "env": env, "measure": "bytes", "used": used,
           "requested": requested, "limit": limit})
}

/// Runs the lifecycle sweep two days from now: every upload started before is abandoned.
async fn sweep_later(app: &TestApp) {
    let run = jobs::lifecycle::run(
        &app.state.lifecycle,
        Trigger::Api,
        &SweepOptions::default(),
        Utc::now() + Duration::days(2),
    )
    .await
    .unwrap();
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
}

/// Live objects and logical bytes of a tenant over all its envs.
async fn live(app: &TestApp, tenant: &str) -> (i64, i64) {
    usage::Entity::find()
        .filter(usage::Column::TenantId.eq(tenant))
        .all(&app.state.db)
        .await
        .unwrap()
        .iter()
        .fold((0, 0), |(o, b), u| (o + u.objects, b + u.logical_bytes))
}

/// The statuses of `responses` and how many were refused for the quota.
async fn tally(responses: Vec<Response>, ok: StatusCode) -> (Vec<Value>, usize) {
    let mut admitted = Vec::new();
    let mut refusals = 0;
    for res in responses {
        if res.status() == ok {
            admitted.push(res.json().await.unwrap());
        } else {
            let p = problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
            assert!(p["quota"]["limit"].is_i64(), "{p}");
            refusals += 1;
        }
    }
    (admitted, refusals)
}

#[tokio::test]
async fn a_raw_upload_holds_its_bytes_from_presign_until_it_fails_is_abandoned_or_settles() {
    let app = TestApp::spawn().await;
    let who = app.owner("held", "dev");
    put_quota(&app, "held", json!({ "max_bytes": 1000 })).await;

    let a = raw(600, 1);
    let pa = json_of(presign(&app, &who, &a).await, StatusCode::OK).await;
    let before = app.footprint().await;
    refused(
        presign(&app, &who, &raw(600, 2)).await,
        bytes_quota("held", None, 600, 600, 1000),
    )
    .await;
    assert_eq!(app.footprint().await, before, "a refusal writes nothing");
    // What is left fits; then nothing does.
    let c = raw(400, 3);
    json_of(presign(&app, &who, &c).await, StatusCode::OK).await;
    refused(
        presign(&app, &who, &raw(1, 4)).await,
        bytes_quota("held", None, 1000, 1, 1000),
    )
    .await;

    // A failed upload releases what it held.
    let res = app
        .register(&who, pa["asset_id"].as_str().unwrap(), &a, BIN)
        .await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "object_missing").await;
    let d = raw(600, 5);
    let pd = json_of(presign(&app, &who, &d).await, StatusCode::OK).await;

    // A settled upload holds its bytes as a live item.
    assert_eq!(app.put_upload(&pd, &d).await.status(), StatusCode::OK);
    let res = app
        .register(&who, pd["asset_id"].as_str().unwrap(), &d, BIN)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(live(&app, "held").await, (1, 600));
    refused(
        presign(&app, &who, &raw(1, 6)).await,
        bytes_quota("held", None, 1000, 1, 1000),
    )
    .await;

    // An abandoned upload releases what it held.
    sweep_later(&app).await;
    json_of(presign(&app, &who, &raw(400, 7)).await, StatusCode::OK).await;
    refused(
        presign(&app, &who, &raw(1, 8)).await,
        bytes_quota("held", None, 1000, 1, 1000),
    )
    .await;
}

#[tokio::test]
async fn an_artifact_holds_its_bytes_from_create_until_it_fails_is_abandoned_or_settles() {
    let app = TestApp::spawn().await;
    let who = app.owner("held", "dev");
    put_quota(&app, "held", json!({ "max_bytes": 1000 })).await;

    let a = create(&app, &who, &png(600, 1)).await;
    let before = app.footprint().await;
    refused(
        app.create_artifact(&who, PNG, &png(600, 2), json!({}))
            .await,
        bytes_quota("held", None, 600, 600, 1000),
    )
    .await;
    refused(
        preview(&app, &who, &png(600, 3)).await,
        bytes_quota("held", None, 600, 600, 1000),
    )
    .await;
    assert_eq!(app.footprint().await, before, "a refusal writes nothing");
    create(&app, &who, &png(400, 4)).await;
    refused(
        app.create_artifact(&who, PNG, &png(16, 5), json!({})).await,
        bytes_quota("held", None, 1000, 16, 1000),
    )
    .await;

    // A failed upload releases what it held.
    let res = complete(&app, &who, &artifact_id(&a)).await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "object_missing").await;
    let c_bytes = png(600, 6);
    let c = create(&app, &who, &c_bytes).await;

    // A settled upload (streamed through Cairn) holds its bytes as a live item.
    let res = app.put_content(&who, &artifact_id(&c), &c_bytes).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(live(&app, "held").await, (1, 600));
    refused(
        app.create_artifact(&who, PNG, &png(16, 7), json!({})).await,
        bytes_quota("held", None, 1000, 16, 1000),
    )
    .await;

    // An abandoned upload releases what it held.
    sweep_later(&app).await;
    app.stream_artifact(&who, PNG, &png(400, 8), json!({}))
        .await;
    assert_eq!(live(&app, "held").await, (2, 1000));
    refused(
        app.create_artifact(&who, PNG, &png(16, 9), json!({})).await,
        bytes_quota("held", None, 1000, 16, 1000),
    )
    .await;
}

#[tokio::test]
async fn uploads_in_progress_count_as_objects() {
    let app = TestApp::spawn().await;
    let who = app.owner("few", "dev");
    put_quota(&app, "few", json!({ "max_objects": 2 })).await;
    json_of(presign(&app, &who, &raw(10, 1)).await, StatusCode::OK).await;
    create(&app, &who, &png(16, 2)).await;
    let objects = json!({"tenant_id": "few", "env": null, "measure": "objects", "used": 2,
                         "requested": 1, "limit": 2});
    let before = app.footprint().await;
    refused(presign(&app, &who, &raw(10, 3)).await, objects.clone()).await;
    refused(
        app.create_artifact(&who, PNG, &png(16, 4), json!({})).await,
        objects,
    )
    .await;
    assert_eq!(app.footprint().await, before, "a refusal writes nothing");

    sweep_later(&app).await;
    app.store(&who, "r.bin", &raw(10, 5)).await;
    app.stream_artifact(&who, PNG, &png(16, 6), json!({})).await;
    assert_eq!(live(&app, "few").await, (2, 26));
    refused(
        presign(&app, &who, &raw(10, 7)).await,
        json!({"tenant_id": "few", "env": null, "measure": "objects", "used": 2,
               "requested": 1, "limit": 2}),
    )
    .await;
}

#[tokio::test]
async fn env_quotas_hold_per_env_and_tenant_quotas_over_all_envs() {
    let app = TestApp::spawn().await;
    let dev = app.owner("split", "dev");
    let prod = app.owner("split", "prod");
    put_quota(
        &app,
        "split",
        json!({ "envs": { "dev": { "max_bytes": 1000 } } }),
    )
    .await;
    json_of(presign(&app, &dev, &raw(600, 1)).await, StatusCode::OK).await;
    let before = app.footprint().await;
    refused(
        app.create_artifact(&dev, PNG, &png(600, 2), json!({}))
            .await,
        bytes_quota("split", Some("dev"), 600, 600, 1000),
    )
    .await;
    assert_eq!(app.footprint().await, before, "a refusal writes nothing");
    // prod is not limited by dev's quota, nor by what dev holds.
    create(&app, &prod, &png(600, 3)).await;
    json_of(presign(&app, &prod, &raw(600, 4)).await, StatusCode::OK).await;

    // With a tenant-wide limit as well, both apply; it counts what every env holds: dev 600,
    // prod 1200.
    put_quota(
        &app,
        "split",
        json!({ "max_bytes": 3000, "envs": { "dev": { "max_bytes": 1000 } } }),
    )
    .await;
    let before = app.footprint().await;
    refused(
        presign(&app, &dev, &raw(401, 5)).await,
        bytes_quota("split", Some("dev"), 600, 401, 1000),
    )
    .await;
    put_quota(
        &app,
        "split",
        json!({ "max_bytes": 2000, "envs": { "dev": { "max_bytes": 1000 } } }),
    )
    .await;
    refused(
        presign(&app, &prod, &raw(300, 5)).await,
        bytes_quota("split", None, 1800, 300, 2000),
    )
    .await;
    refused(
        presign(&app, &dev, &raw(300, 6)).await,
        bytes_quota("split", None, 1800, 300, 2000),
    )
    .await;
    assert_eq!(app.footprint().await, before, "a refusal writes nothing");
    json_of(presign(&app, &prod, &raw(200, 8)).await, StatusCode::OK).await;
}

#[tokio::test]
async fn concurrent_admissions_cannot_pass_a_limit_together() {
    let app = TestApp::spawn().await;
    for t in ["raw-race", "art-race", "one-shot-race"] {
        put_quota(&app, t, json!({ "max_bytes": 1000 })).await;
    }
    put_quota(
        &app,
        "env-race",
        json!({ "envs": { "dev": { "max_bytes": 1000 } } }),
    )
    .await;

    // Raw presigns.
    let who = app.owner("raw-race", "dev");
    let before = app.footprint().await;
    let res = join_all((0..10).map(|i| {
        let who = who.clone();
        let app = &app;
        async move { presign(app, &who, &raw(600, i)).await }
    }))
    .await;
    let (admitted, refusals) = tally(res, StatusCode::OK).await;
    assert_eq!((admitted.len(), refusals), (1, 9));
    let after = app.footprint().await;
    assert_eq!(
        (after.blobs, after.assets),
        (before.blobs + 1, before.assets + 1),
        "refusals write nothing"
    );

    // Artifact creates.
    let who = app.owner("art-race", "dev");
    let before = app.footprint().await;
    let res = join_all((0..10).map(|i| {
        let who = who.clone();
        let app = &app;
        async move {
            app.create_artifact(&who, PNG, &png(600, i), json!({}))
                .await
        }
    }))
    .await;
    let (admitted, refusals) = tally(res, StatusCode::CREATED).await;
    assert_eq!((admitted.len(), refusals), (1, 9));
    let after = app.footprint().await;
    assert_eq!(
        (after.blobs, after.artifacts),
        (before.blobs + 1, before.artifacts + 1),
        "refusals write nothing"
    );

    // One-shot creates: the bytes come with the request; a refused body is not kept.
    let who = app.owner("one-shot-race", "dev");
    let before = app.footprint().await;
    let res = join_all((0..10).map(|i| {
        let who = who.clone();
        let app = &app;
        async move { preview(app, &who, &png(600, i)).await }
    }))
    .await;
    let (admitted, refusals) = tally(res, StatusCode::CREATED).await;
    assert_eq!((admitted.len(), refusals), (1, 9));
    let after = app.footprint().await;
    assert_eq!(
        (after.blobs, after.artifacts, after.objects),
        (before.blobs + 1, before.artifacts + 1, before.objects + 1),
        "refusals write nothing"
    );
    assert_eq!(live(&app, "one-shot-race").await, (1, 600));

    // Raw presigns and artifact creates together, against an env's limit.
    let who = app.owner("env-race", "dev");
    let res = join_all((0..10).map(|i| {
        let who = who.clone();
        let app = &app;
        async move {
            let res = if i % 2 == 0 {
                presign(app, &who, &raw(600, i)).await
            } else {
                app.create_artifact(&who, PNG, &png(600, i), json!({}))
                    .await
            };
            // One answer status for both kinds of admission.
            if res.status().is_success() {
                StatusCode::OK
            } else {
                let p = problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
                assert_eq!(p["quota"]["env"], "dev", "{p}");
                StatusCode::FORBIDDEN
            }
        }
    }))
    .await;
    let admitted = res.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(admitted, 1, "{res:?}");
    // Another env is not limited by dev's quota.
    let prod = app.owner("env-race", "prod");
    json_of(presign(&app, &prod, &raw(600, 99)).await, StatusCode::OK).await;
}

#[tokio::test]
async fn concurrent_dedup_admissions_cannot_pass_a_limit_together() {
    let app = TestApp::spawn().await;
    // Raw: content the tenant+env stores already; each dedup is a new live item of its size.
    let who = app.owner("dup-raw", "dev");
    let content = raw(300, 1);
    app.store(&who, "x.bin", &content).await;
    put_quota(&app, "dup-raw", json!({ "max_bytes": 1000 })).await;
    let res = join_all((0..10).map(|_| {
        let who = who.clone();
        let app = &app;
        let body = json!({"filename": "x.bin", "content_type": BIN,
                          "size_bytes": content.len(), "sha256": sha256_hex(&content)});
        async move { app.post(&who, "/storage/raw/presign-upload", &body).await }
    }))
    .await;
    let (admitted, refusals) = tally(res, StatusCode::OK).await;
    assert_eq!((admitted.len(), refusals), (2, 8));
    assert!(admitted.iter().all(|a| a["deduplicated"] == true));
    assert_eq!(live(&app, "dup-raw").await, (3, 900));

    // Artifacts.
    let who = app.owner("dup-art", "dev");
    let content = png(300, 2);
    app.stream_artifact(&who, PNG, &content, json!({})).await;
    put_quota(&app, "dup-art", json!({ "max_bytes": 1000 })).await;
    let res = join_all((0..10).map(|_| {
        let who = who.clone();
        let app = &app;
        let content = &content;
        async move {
            app.create_artifact(&who, PNG, content, json!({"sha256": sha256_hex(content)}))
                .await
        }
    }))
    .await;
    let (admitted, refusals) = tally(res, StatusCode::CREATED).await;
    assert_eq!((admitted.len(), refusals), (2, 8));
    assert!(admitted
        .iter()
        .all(|a| a["artifact"]["status"] == "available"));
    assert_eq!(live(&app, "dup-art").await, (3, 900));
}

#[tokio::test]
async fn concurrent_registers_of_uploads_admitted_before_the_limit_dropped_cannot_pass_it() {
    let app = TestApp::spawn().await;
    let who = app.owner("lowered", "dev");
    // Five uploads of 600 bytes admitted under 3000 bytes; then the limit drops to 1000.
    put_quota(&app, "lowered", json!({ "max_bytes": 3000 })).await;
    let mut uploads = Vec::new();
    for i in 0..5 {
        let bytes = raw(600, i);
        let p = json_of(presign(&app, &who, &bytes).await, StatusCode::OK).await;
        assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
        uploads.push((p["asset_id"].as_str().unwrap().to_owned(), bytes));
    }
    put_quota(&app, "lowered", json!({ "max_bytes": 1000 })).await;
    let before = app.footprint().await;
    let res = join_all(
        uploads
            .iter()
            .map(|(id, bytes)| app.register(&who, id, bytes, BIN)),
    )
    .await;
    let (admitted, refusals) = tally(res, StatusCode::OK).await;
    assert_eq!((admitted.len(), refusals), (1, 4));
    assert_eq!(live(&app, "lowered").await, (1, 600));
    // A refused registration leaves the asset pending with its upload, for a later try.
    let after = app.footprint().await;
    assert_eq!(
        after,
        crate::helpers::Footprint {
            events: before.events + 1,
            ..before
        },
        "only the admitted registration wrote"
    );
    let registered = admitted[0]["asset_id"].as_str().unwrap();
    for (id, bytes) in uploads.iter().filter(|(id, _)| id != registered) {
        let res = app.register(&who, id, bytes, BIN).await;
        refused(res, bytes_quota("lowered", None, 600, 600, 1000)).await;
        assert_eq!(
            status(&app, &who, &format!("/storage/raw/{id}")).await,
            "pending"
        );
    }
    // With room again, they register.
    put_quota(&app, "lowered", json!({ "max_bytes": 3000 })).await;
    for (id, bytes) in uploads.iter().filter(|(id, _)| id != registered) {
        assert_eq!(
            app.register(&who, id, bytes, BIN).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(live(&app, "lowered").await, (5, 3000));
}

#[tokio::test]
async fn concurrent_completes_of_uploads_admitted_before_the_limit_dropped_cannot_pass_it() {
    let app = TestApp::spawn().await;
    let who = app.owner("lowered", "dev");
    // Five uploads of 600 bytes admitted under 3000 bytes; then the limit drops to 1000.
    put_quota(&app, "lowered", json!({ "max_bytes": 3000 })).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let bytes = png(600, i);
        let created = create(&app, &who, &bytes).await;
        assert!(app.put_upload(&created, &bytes).await.status().is_success());
        ids.push(artifact_id(&created));
    }
    put_quota(&app, "lowered", json!({ "max_bytes": 1000 })).await;
    let before = app.footprint().await;
    let res = join_all(ids.iter().map(|id| complete(&app, &who, id))).await;
    let (admitted, refusals) = tally(res, StatusCode::OK).await;
    assert_eq!((admitted.len(), refusals), (1, 4));
    assert_eq!(live(&app, "lowered").await, (1, 600));
    let after = app.footprint().await;
    assert_eq!(
        after,
        crate::helpers::Footprint {
            events: before.events + 1,
            ..before
        },
        "only the admitted completion wrote"
    );
    let done = admitted[0]["artifact_id"].as_str().unwrap();
    for id in ids.iter().filter(|id| *id != done) {
        assert_eq!(
            status(&app, &who, &format!("/artifacts/{id}")).await,
            "pending"
        );
        refused(
            complete(&app, &who, id).await,
            bytes_quota("lowered", None, 600, 600, 1000),
        )
        .await;
    }
    put_quota(&app, "lowered", json!({ "max_bytes": 3000 })).await;
    for id in ids.iter().filter(|id| *id != done) {
        assert_eq!(complete(&app, &who, id).await.status(), StatusCode::OK);
    }
    assert_eq!(live(&app, "lowered").await, (5, 3000));
}

#[tokio::test]
async fn concurrent_streamed_uploads_admitted_before_the_limit_dropped_cannot_pass_it() {
    let app = TestApp::spawn().await;
    let who = app.owner("lowered", "dev");
    // Five uploads of 600 bytes admitted under 3000 bytes; then the limit drops to 1000.
    put_quota(&app, "lowered", json!({ "max_bytes": 3000 })).await;
    let mut items = Vec::new();
    for i in 0..5 {
        let bytes = png(600, i);
        let created = create(&app, &who, &bytes).await;
        items.push((artifact_id(&created), bytes));
    }
    put_quota(&app, "lowered", json!({ "max_bytes": 1000 })).await;
    let before = app.footprint().await;
    let res = join_all(
        items
            .iter()
            .map(|(id, bytes)| app.put_content(&who, id, bytes)),
    )
    .await;
    let (admitted, refusals) = tally(res, StatusCode::OK).await;
    assert_eq!((admitted.len(), refusals), (1, 4));
    assert_eq!(live(&app, "lowered").await, (1, 600));
    // A refused body is not kept and the artifact is pending again, for a later try.
    let after = app.footprint().await;
    assert_eq!(
        (after.blobs, after.artifacts, after.objects),
        (before.blobs, before.artifacts, before.objects + 1),
        "only the admitted upload is stored"
    );
    let done = admitted[0]["artifact_id"].as_str().unwrap();
    for (id, _) in items.iter().filter(|(id, _)| id != done) {
        assert_eq!(
            status(&app, &who, &format!("/artifacts/{id}")).await,
            "pending"
        );
    }
    put_quota(&app, "lowered", json!({ "max_bytes": 3000 })).await;
    for (id, bytes) in items.iter().filter(|(id, _)| id != done) {
        let res = app.put_content(&who, id, bytes).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }
    assert_eq!(live(&app, "lowered").await, (5, 3000));
}

#[tokio::test]
async fn the_background_verifier_fails_an_upload_that_no_longer_fits() {
    let app = TestApp::spawn().await;
    let who = app.owner("verified", "dev");
    put_quota(&app, "verified", json!({ "max_bytes": 1000 })).await;
    let bytes = png(600, 1);
    let created = create(&app, &who, &bytes).await;
    let id = artifact_id(&created);
    assert!(app.put_upload(&created, &bytes).await.status().is_success());
    // What `complete` leaves for a multipart upload: the artifact `uploading`, its blob
    // `verifying`, for the background verifier.
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    entity::artifact::Entity::update_many()
        .col_expr(entity::artifact::Column::Status, Expr::value("uploading"))
        .filter(entity::artifact::Column::ArtifactId.eq(uuid))
        .exec(&app.state.db)
        .await
        .unwrap();
    entity::blob::Entity::update_many()
        .col_expr(entity::blob::Column::State, Expr::value("verifying"))
        .exec(&app.state.db)
        .await
        .unwrap();
    put_quota(&app, "verified", json!({ "max_bytes": 500 })).await;
    cairn::domain::artifacts::verify::recover(&app.state)
        .await
        .unwrap();
    assert_eq!(
        status(&app, &who, &format!("/artifacts/{id}?wait=20")).await,
        "failed"
    );
    let failed = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "artifact.failed")
        .expect("an artifact.failed event");
    assert_eq!(
        failed.detail["code"], "quota_exceeded",
        "{:?}",
        failed.detail
    );
    assert_eq!(app.object_count().await, 0, "the refused object is removed");
    assert_eq!(live(&app, "verified").await, (0, 0));
    // The failure released what the upload held.
    put_quota(&app, "verified", json!({ "max_bytes": 1000 })).await;
    create(&app, &who, &png(1000, 2)).await;
}

#[tokio::test]
async fn refused_multipart_admissions_leave_no_upload_open() {
    // Large files get a multipart upload from the store (S3) before the admitting transaction;
    // a refusal there aborts it.
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_UPLOAD_BYTES", &(64u64 << 20).to_string());
    })
    .await;
    let size = 9u64 << 20;
    for t in ["big-raw", "big-art"] {
        put_quota(&app, t, json!({ "max_bytes": 10u64 << 20 })).await;
    }
    let raw_who = app.owner("big-raw", "dev");
    let art_who = app.owner("big-art", "dev");
    let res = join_all((0..8).map(|i| {
        let (who, path, body) = if i % 2 == 0 {
            let body = json!({"filename": "big.bin", "content_type": BIN, "size_bytes": size});
            (&raw_who, "/storage/raw/presign-upload", body)
        } else {
            let body = json!({"run_id": "r1", "kind": "video", "filename": "big.mp4",
                              "content_type": "video/mp4", "size_bytes": size});
            (&art_who, "/artifacts", body)
        };
        let app = &app;
        async move {
            let res = app.post(who, path, &body).await;
            if res.status().is_success() {
                Some(res.json::<Value>().await.unwrap())
            } else {
                problem(res, StatusCode::FORBIDDEN, "quota_exceeded").await;
                None
            }
        }
    }))
    .await;
    let admitted: Vec<Value> = res.into_iter().flatten().collect();
    assert_eq!(admitted.len(), 2, "one per tenant: {admitted:?}");
    let method = if app.is_s3() { "MULTIPART" } else { "PUT" };
    for a in &admitted {
        assert_eq!(a["upload"]["method"], method, "{a}");
    }
    if let Some(bucket) = &app.bucket {
        let open = crate::helpers::s3_client()
            .await
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(open.uploads().len(), 2, "refused uploads are aborted");
    }
}
