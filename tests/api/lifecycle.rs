//! The lifecycle sweep, driven with an injected clock on every backend combination: each rule,
//! protection (legal hold, audit), dedup safety, multipart aborts, dry run, orphans,
//! idempotence and crash safety.
use cairn::{
    domain::ObjectKey,
    jobs::{self, RunError, Trigger},
    lifecycle::{self, CrashPoint, Lifecycle, Report, SweepOptions},
};
use chrono::{DateTime, Duration, Utc};
use entity::{artifact, blob, job_lease, lifecycle_run, raw_asset};
use reqwest::StatusCode;
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{sample, Caller, TestApp};

const PNG: &str = "image/png";

/// Runs a sweep as of `now` through the same entry point the schedule, CLI and API use.
async fn sweep_with(app: &TestApp, now: DateTime<Utc>, opts: SweepOptions) -> Report {
    let run = jobs::lifecycle::run(&app.state.lifecycle, Trigger::Api, &opts, now)
        .await
        .expect("the sweep runs");
    assert_ne!(run.status, lifecycle_run::STATUS_FAILED, "{:?}", run.error);
    serde_json::from_value(run.report).unwrap()
}

async fn sweep(app: &TestApp, now: DateTime<Utc>) -> Report {
    sweep_with(app, now, SweepOptions::default()).await
}

async fn dry(app: &TestApp, now: DateTime<Utc>) -> Report {
    let opts = SweepOptions {
        dry_run: true,
        ..Default::default()
    };
    sweep_with(app, now, opts).await
}

/// The sweep context of another process on the app's catalog and store.
fn another_process(app: &TestApp, invalidate: bool) -> Lifecycle {
    Lifecycle {
        db: app.state.db.clone(),
        store: app.state.store.clone(),
        config: app.state.config.lifecycle.clone(),
        invalidate,
        holder: jobs::holder_id(),
    }
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

async fn object_exists(app: &TestApp, key: &str) -> bool {
    let key = ObjectKey::parse(key).unwrap();
    app.state.store.head(&key).await.unwrap().is_some()
}

/// The key of an artifact's (or asset's) object, from its `uri`.
fn key_of(item: &Value) -> String {
    let uri = item["uri"].as_str().unwrap();
    let rest = uri.split_once("://").unwrap().1;
    // `s3://bucket/key` or `local:///key`.
    rest.split_once('/').unwrap().1.to_owned()
}

fn id_of(item: &Value) -> &str {
    item["artifact_id"]
        .as_str()
        .or_else(|| item["asset_id"].as_str())
        .unwrap()
}

async fn status_in_catalog(app: &TestApp, id: &str) -> Option<String> {
    let id: uuid::Uuid = id.parse().unwrap();
    if let Some(a) = artifact::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
    {
        return Some(a.status);
    }
    raw_asset::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .map(|r| r.status)
}

async fn event_types(app: &TestApp) -> Vec<String> {
    app.events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

async fn delete(app: &TestApp, who: &Caller, id: &str) {
    let res = app
        .request(who, reqwest::Method::DELETE, &format!("/artifacts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

async fn put_rules(app: &TestApp, tenant: &str, rules: Value) {
    let res = app
        .client
        .put(format!("{}/admin/tenants/{tenant}/retention", app.base))
        .bearer_auth(app.operator_token())
        .json(&json!({ "rules": rules }))
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

#[tokio::test]
async fn abandoned_uploads_fail_and_lose_their_partial_objects() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    // A raw upload whose bytes arrived but which was never registered, and an artifact whose
    // bytes never came.
    let bytes = b"never registered".to_vec();
    let p = app
        .presign(&acme, "a.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(app.put_upload(&p, &bytes).await.status(), StatusCode::OK);
    let res = app
        .create_artifact(&acme, PNG, &sample(PNG, 100), json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let art = created["artifact"].clone();
    assert_eq!(app.object_count().await, 1);

    let now = Utc::now();
    // Within the TTL nothing is abandoned.
    let r = sweep(&app, now + Duration::hours(23)).await;
    assert_eq!(r.abandoned.count, 0);
    assert_eq!(app.object_count().await, 1);

    let r = sweep(&app, now + Duration::hours(25)).await;
    assert_eq!(r.abandoned.count, 2, "{r:?}");
    assert_eq!(r.abandoned.bytes, bytes.len() as u64 + 100);
    // Only the raw upload's bytes were ever stored: the artifact's blob had no object.
    assert_eq!(
        r.objects_deleted,
        lifecycle::report::Tally {
            count: 1,
            bytes: bytes.len() as u64
        }
    );
    assert_eq!(app.object_count().await, 0, "the partial object is removed");
    let asset_id = p["asset_id"].as_str().unwrap();
    assert_eq!(status_in_catalog(&app, asset_id).await.unwrap(), "failed");
    assert_eq!(
        status_in_catalog(&app, id_of(&art)).await.unwrap(),
        "failed"
    );
    // The failed items keep their (failed, objectless) blob rows; nothing is left `deleting`.
    let blobs = blob::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(blobs.len(), 2);
    assert!(blobs
        .iter()
        .all(|b| b.state == blob::STATE_FAILED && b.ref_count == 0));
    let res = app.get(&acme, &format!("/artifacts/{}", id_of(&art))).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "failed");
    let types = event_types(&app).await;
    assert!(types.contains(&"raw.upload_abandoned".to_owned()));
    assert!(types.contains(&"artifact.failed".to_owned()));
    assert_eq!(types.iter().filter(|t| *t == "object.removed").count(), 2);

    // Registering the abandoned asset now fails: it is no longer pending.
    let res = app
        .register(&acme, asset_id, &bytes, "application/octet-stream")
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test]
async fn expired_items_are_soft_deleted_then_purged_after_the_grace_period() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let now = Utc::now();
    let a = app
        .stream_artifact(
            &acme,
            PNG,
            &sample(PNG, 300),
            json!({"expires_at": (now + Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    let keep = app
        .stream_artifact(&acme, PNG, &sample(PNG, 301), json!({}))
        .await;
    let key = key_of(&a);

    assert_eq!(
        sweep(&app, now + Duration::minutes(30)).await,
        Report::default()
    );

    let r = sweep(&app, now + Duration::hours(2)).await;
    assert_eq!(r.expired.count, 1);
    assert_eq!(r.expired.bytes, 300);
    assert_eq!(r.purged.count, 0, "the grace period keeps it recoverable");
    let res = app.get(&acme, &format!("/artifacts/{}", id_of(&a))).await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "deleted items are invisible"
    );
    assert!(object_exists(&app, &key).await);

    let r = sweep(&app, now + Duration::hours(2) + days(8)).await;
    assert_eq!(r.purged.count, 1);
    assert_eq!(
        r.objects_deleted,
        lifecycle::report::Tally {
            count: 1,
            bytes: 300
        }
    );
    assert!(!object_exists(&app, &key).await);
    assert!(
        status_in_catalog(&app, id_of(&a)).await.is_none(),
        "the row is purged"
    );
    assert!(object_exists(&app, &key_of(&keep)).await);
    assert_eq!(app.footprint().await.blobs, 1);
    let events = app.events().await;
    let deleted = events
        .iter()
        .find(|e| e.event_type == "artifact.deleted")
        .unwrap();
    assert_eq!(deleted.detail["reason"], "expired");
    assert_eq!(deleted.user_id, lifecycle::ACTOR);
    assert!(events.iter().any(|e| e.event_type == "artifact.purged"));
}

#[tokio::test]
async fn retention_applies_by_tenant_env_and_kind() {
    let app = TestApp::spawn().await;
    let dev = app.owner("acme", "dev");
    let prod = app.owner("acme", "prod");
    let other = app.owner("other", "prod");
    put_rules(
        &app,
        "acme",
        json!([{"days": 30}, {"env": "prod", "kind": "image", "days": 5}, {"kind": "video", "days": null}]),
    )
    .await;
    let dev_image = app
        .stream_artifact(&dev, PNG, &sample(PNG, 400), json!({}))
        .await;
    let prod_image = app
        .stream_artifact(&prod, PNG, &sample(PNG, 401), json!({}))
        .await;
    let prod_video = app
        .stream_artifact(&prod, "video/mp4", &sample("video/mp4", 402), json!({}))
        .await;
    let raw = app.store(&dev, "raw.bin", b"raw bytes").await;
    let other_image = app
        .stream_artifact(&other, PNG, &sample(PNG, 403), json!({}))
        .await;

    let now = Utc::now();
    let r = sweep(&app, now + days(6)).await;
    assert_eq!(r.retention.count, 1, "{r:?}");
    assert_eq!(
        status_in_catalog(&app, id_of(&prod_image)).await.unwrap(),
        "deleted"
    );
    assert_eq!(
        status_in_catalog(&app, id_of(&dev_image)).await.unwrap(),
        "available"
    );

    let r = sweep(&app, now + days(31)).await;
    assert_eq!(
        r.retention.count, 2,
        "the dev image and the raw asset: {r:?}"
    );
    assert_eq!(
        status_in_catalog(&app, id_of(&dev_image)).await.unwrap(),
        "deleted"
    );
    assert_eq!(
        status_in_catalog(&app, id_of(&raw)).await.unwrap(),
        "deleted"
    );
    // `days: null` keeps videos; the other tenant has no rules and no default applies.
    assert_eq!(
        status_in_catalog(&app, id_of(&prod_video)).await.unwrap(),
        "available"
    );
    assert_eq!(
        status_in_catalog(&app, id_of(&other_image)).await.unwrap(),
        "available"
    );
    let res = app
        .get(&dev, &format!("/storage/raw/{}", id_of(&raw)))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Past the grace period the other two are purged and their objects go.
    let r = sweep(&app, now + days(40)).await;
    assert_eq!(r.purged.count, 2);
    assert_eq!(r.objects_deleted.count, 2);
    assert_eq!(app.object_count().await, 2);
}

#[tokio::test]
async fn the_configured_default_retention_applies_where_no_rule_does() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_RETENTION_DAYS", "10");
    })
    .await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(&acme, PNG, &sample(PNG, 500), json!({}))
        .await;
    put_rules(&app, "other", json!([{"days": null}])).await;
    let b = app
        .stream_artifact(
            &app.owner("other", "dev"),
            PNG,
            &sample(PNG, 501),
            json!({}),
        )
        .await;
    let r = sweep(&app, Utc::now() + days(11)).await;
    assert_eq!(r.retention.count, 1);
    assert_eq!(status_in_catalog(&app, id_of(&a)).await.unwrap(), "deleted");
    assert_eq!(
        status_in_catalog(&app, id_of(&b)).await.unwrap(),
        "available"
    );
}

#[tokio::test]
async fn legal_hold_and_audit_artifacts_are_protected() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    put_rules(&app, "acme", json!([{"days": 1}])).await;
    let now = Utc::now();
    let res = app
        .post(
            &acme,
            "/artifacts/audit",
            &json!({"run_id": "r1", "expires_at": (now + Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let audit = res.json::<Value>().await.unwrap()["artifact"].clone();
    let held = app
        .stream_artifact(
            &acme,
            PNG,
            &sample(PNG, 600),
            json!({"expires_at": (now + Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    let res = app
        .put_json(
            &acme,
            &format!("/artifacts/{}/legal-hold", id_of(&held)),
            &json!({"hold": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Expired and out of retention, yet neither goes.
    let r = sweep(&app, now + days(3)).await;
    assert_eq!(r.expired.count + r.retention.count, 0, "{r:?}");
    assert_eq!(
        status_in_catalog(&app, id_of(&audit)).await.unwrap(),
        "available"
    );
    assert_eq!(
        status_in_catalog(&app, id_of(&held)).await.unwrap(),
        "available"
    );

    // A rule naming audit removes audits; the hold still wins until it is released.
    put_rules(
        &app,
        "acme",
        json!([{"days": 1}, {"kind": "audit", "days": 2}]),
    )
    .await;
    let r = sweep(&app, now + days(3)).await;
    assert_eq!(r.expired.count, 1, "{r:?}");
    assert_eq!(
        status_in_catalog(&app, id_of(&audit)).await.unwrap(),
        "deleted"
    );
    assert_eq!(
        status_in_catalog(&app, id_of(&held)).await.unwrap(),
        "available"
    );
    let res = app
        .put_json(
            &acme,
            &format!("/artifacts/{}/legal-hold", id_of(&held)),
            &json!({"hold": false}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let r = sweep(&app, now + days(3)).await;
    assert_eq!(r.expired.count, 1);
    assert_eq!(
        status_in_catalog(&app, id_of(&held)).await.unwrap(),
        "deleted"
    );
}

#[tokio::test]
async fn purging_one_of_two_items_sharing_content_keeps_the_object() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample(PNG, 700);
    let first = app.stream_artifact(&acme, PNG, &bytes, json!({})).await;
    let second = app
        .stream_artifact(&acme, PNG, &bytes, json!({"run_id": "r2"}))
        .await;
    // A raw asset of the same content shares the private blob too.
    let raw = app.store(&acme, "same.png", &bytes).await;
    let blobs = blob::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(blobs.len(), 1, "deduplicated");
    assert_eq!(blobs[0].ref_count, 3);
    let key = blobs[0].key.clone();

    delete(&app, &acme, id_of(&first)).await;
    let now = Utc::now();
    let r = sweep(&app, now + days(8)).await;
    assert_eq!(r.purged.count, 1);
    assert_eq!(
        r.objects_deleted.count, 0,
        "two items still reference the object"
    );
    assert!(object_exists(&app, &key).await);
    let res = app
        .get(&acme, &format!("/artifacts/{}/content", id_of(&second)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(
        blob::Entity::find_by_id(blobs[0].id)
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .ref_count,
        2
    );

    delete(&app, &acme, id_of(&second)).await;
    let r = sweep(&app, now + days(16)).await;
    assert_eq!((r.purged.count, r.objects_deleted.count), (1, 0));
    assert!(
        object_exists(&app, &key).await,
        "the raw asset still holds it"
    );

    // The last reference goes by retention of raw assets.
    put_rules(&app, "acme", json!([{"kind": "raw", "days": 1}])).await;
    let r = sweep(&app, now + days(17)).await;
    assert_eq!(r.retention.count, 1);
    let r = sweep(&app, now + days(30)).await;
    assert_eq!(r.purged.count, 1);
    assert_eq!(r.objects_deleted.count, 1);
    assert!(!object_exists(&app, &key).await);
    assert_eq!(app.footprint().await.blobs, 0);
    assert!(status_in_catalog(&app, id_of(&raw)).await.is_none());
}

#[tokio::test]
async fn items_sharing_content_purged_in_one_batch_drop_one_reference_each() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample(PNG, 900);
    let a = app.stream_artifact(&acme, PNG, &bytes, json!({})).await;
    let b = app
        .stream_artifact(&acme, PNG, &bytes, json!({"run_id": "r2"}))
        .await;
    let c = app
        .stream_artifact(&acme, PNG, &bytes, json!({"run_id": "r3"}))
        .await;
    let blob_row = || async {
        let mut all = blob::Entity::find().all(&app.state.db).await.unwrap();
        assert!(all.len() <= 1, "deduplicated");
        all.pop()
    };
    let shared = blob_row().await.unwrap();
    assert_eq!(shared.ref_count, 3);

    // Two of the three go in one batch: the blob loses two references, not one, and stays.
    delete(&app, &acme, id_of(&a)).await;
    delete(&app, &acme, id_of(&b)).await;
    let now = Utc::now();
    let r = sweep(&app, now + days(8)).await;
    assert_eq!((r.purged.count, r.objects_deleted.count), (2, 0));
    assert_eq!(blob_row().await.unwrap().ref_count, 1);
    assert!(object_exists(&app, &shared.key).await);
    let purged = event_types(&app)
        .await
        .iter()
        .filter(|t| t.as_str() == "artifact.purged")
        .count();
    assert_eq!(purged, 2, "one event per purged item");

    // The last one goes: the blob is released and its object removed.
    delete(&app, &acme, id_of(&c)).await;
    let r = sweep(&app, now + days(16)).await;
    assert_eq!((r.purged.count, r.objects_deleted.count), (1, 1));
    assert!(blob_row().await.is_none());
    assert!(!object_exists(&app, &shared.key).await);
}

#[tokio::test]
async fn a_public_object_removed_is_queued_for_cdn_invalidation() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(
            &acme,
            PNG,
            &sample(PNG, 800),
            json!({"visibility": "public"}),
        )
        .await;
    let p = app
        .stream_artifact(&acme, PNG, &sample(PNG, 801), json!({}))
        .await;
    delete(&app, &acme, id_of(&a)).await;
    delete(&app, &acme, id_of(&p)).await;
    // The app has no distribution; the same catalog and store with one configured.
    let lc = another_process(&app, true);
    let run = jobs::lifecycle::run(
        &lc,
        Trigger::Cli,
        &SweepOptions::default(),
        Utc::now() + days(8),
    )
    .await
    .unwrap();
    let r: Report = serde_json::from_value(run.report).unwrap();
    assert_eq!(r.objects_deleted.count, 2);
    assert_eq!(r.invalidations_queued, 1, "only the public one");
    let queued = entity::cdn_invalidation::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].path, format!("/{}", key_of(&a)));
}

/// S3 only: the local store has no multipart uploads.
#[tokio::test]
#[ignore = "S3 only: scripts/test.sh selects it on the S3 runs"]
async fn multipart_uploads_are_aborted_whether_the_catalog_knows_them_or_not() {
    crate::helpers::require_backend(None, "s3");
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_UPLOAD_BYTES", "20000000");
    })
    .await;
    let acme = app.owner("acme", "dev");
    // An artifact presigned as multipart and never completed...
    let res = app
        .post(
            &acme,
            "/artifacts",
            &json!({"run_id": "r1", "kind": "video", "filename": "big.mp4",
                    "content_type": "video/mp4", "size_bytes": 9 * 1024 * 1024}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["upload"]["method"], "MULTIPART");
    // ...and an upload only the store knows (a client that gave up on its own).
    let s3 = crate::helpers::s3_client().await;
    let bucket = app.bucket.clone().unwrap();
    s3.create_multipart_upload()
        .bucket(&bucket)
        .key("tenants/acme/dev/runs/r9/video/0190f000-0000-7000-8000-000000000000/x.mp4")
        .send()
        .await
        .unwrap();
    let open = |s3: aws_sdk_s3::Client, bucket: String| async move {
        s3.list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
            .uploads()
            .len()
    };
    assert_eq!(open(s3.clone(), bucket.clone()).await, 2);

    // Young uploads are left alone.
    let r = sweep(&app, Utc::now()).await;
    assert_eq!(r.multipart_aborted, 0);
    let r = sweep(&app, Utc::now() + Duration::hours(25)).await;
    assert_eq!(r.multipart_aborted, 2, "{r:?}");
    assert_eq!(r.abandoned.count, 1);
    assert_eq!(open(s3, bucket).await, 0);
}

/// One of everything the sweep acts on, as of `now + 9 days`.
async fn scenario(app: &TestApp) {
    let acme = app.owner("acme", "dev");
    let now = Utc::now();
    let shared = sample(PNG, 900);
    let a = app.stream_artifact(&acme, PNG, &shared, json!({})).await;
    app.stream_artifact(&acme, PNG, &shared, json!({"run_id": "r2"}))
        .await;
    delete(app, &acme, id_of(&a)).await;
    let lone = app
        .stream_artifact(&acme, PNG, &sample(PNG, 901), json!({}))
        .await;
    delete(app, &acme, id_of(&lone)).await;
    app.stream_artifact(
        &acme,
        PNG,
        &sample(PNG, 902),
        json!({"expires_at": (now + Duration::hours(1)).to_rfc3339()}),
    )
    .await;
    let p = app
        .presign(
            &acme,
            "abandoned.bin",
            "application/octet-stream",
            b"abandoned",
        )
        .await;
    assert_eq!(
        app.put_upload(&p, b"abandoned").await.status(),
        StatusCode::OK
    );
    put_rules(app, "acme", json!([{"kind": "raw", "days": 3}])).await;
    app.store(&acme, "old.bin", b"old raw").await;
}

#[tokio::test]
async fn a_dry_run_reports_exactly_what_the_real_run_does_and_changes_nothing() {
    let app = TestApp::spawn().await;
    scenario(&app).await;
    let when = Utc::now() + days(9);
    let before = app.footprint().await;
    let planned = dry(&app, when).await;
    let after = app.footprint().await;
    assert_eq!(
        (
            before.blobs,
            before.assets,
            before.artifacts,
            before.objects
        ),
        (after.blobs, after.assets, after.artifacts, after.objects)
    );
    assert_eq!(before.events, after.events, "no events either");
    assert!(
        planned.purged.count >= 2 && planned.objects_deleted.count >= 2,
        "{planned:?}"
    );
    let done = sweep(&app, when).await;
    assert_eq!(planned, done);
    let runs = jobs::lifecycle::list(&app.state.db, 10, None)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(!runs[0].dry_run && runs[1].dry_run);
}

#[tokio::test]
async fn a_second_sweep_in_a_row_does_nothing() {
    let app = TestApp::spawn().await;
    scenario(&app).await;
    let when = Utc::now() + days(9);
    let first = sweep(&app, when).await;
    assert!(
        first.purged.count > 0 && first.abandoned.count > 0,
        "{first:?}"
    );
    let events = app.footprint().await.events;
    assert_eq!(sweep(&app, when).await, Report::default());
    assert_eq!(app.footprint().await.events, events);
}

#[tokio::test]
async fn orphans_are_reported_and_removed_only_on_request() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let kept = app
        .stream_artifact(&acme, PNG, &sample(PNG, 950), json!({}))
        .await;
    // An object no blob row names (a lost delete, a crashed writer).
    let key =
        ObjectKey::parse("tenants/acme/dev/raw/0190f000-0000-7000-8000-000000000001/lost.bin")
            .unwrap();
    app.put_object(
        &key,
        "application/octet-stream",
        cairn::storage::PRIVATE_IMMUTABLE,
        b"lost".to_vec(),
    )
    .await;

    let r = sweep(&app, Utc::now()).await;
    assert_eq!(
        r.orphans.found.count, 0,
        "younger than the pending TTL: maybe an upload"
    );
    let later = Utc::now() + Duration::hours(25);
    let r = sweep(&app, later).await;
    assert_eq!(
        r.orphans.found,
        lifecycle::report::Tally { count: 1, bytes: 4 }
    );
    assert_eq!(r.orphans.sample, vec![key.as_str().to_owned()]);
    assert_eq!(r.orphans.removed.count, 0);
    assert!(object_exists(&app, key.as_str()).await);

    let fix = SweepOptions {
        fix_orphans: true,
        ..Default::default()
    };
    let r = sweep_with(&app, later, fix).await;
    assert_eq!(r.orphans.removed.count, 1);
    assert!(!object_exists(&app, key.as_str()).await);
    assert!(
        object_exists(&app, &key_of(&kept)).await,
        "catalogued objects stay"
    );
}

/// More `deleting` blobs than one round of requests takes: the object step sends its
/// multi-object deletes `CAIRN_PURGE_CONCURRENCY` at a time, round after round, and every object
/// and row goes while live content stays.
#[tokio::test]
async fn objects_go_in_concurrent_multi_object_deletes_round_after_round() {
    use futures_util::StreamExt;

    const N: usize = 2 * cairn::storage::DELETE_BATCH + 150;
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_PURGE_CONCURRENCY", "2");
    })
    .await;
    assert_eq!(app.state.config.lifecycle.delete_concurrency, 2);
    let acme = app.owner("acme", "dev");
    let kept = app
        .stream_artifact(&acme, PNG, &sample(PNG, 700), json!({}))
        .await;
    let keys: Vec<ObjectKey> = (0..N)
        .map(|i| {
            let id = uuid::Uuid::now_v7();
            ObjectKey::parse(&format!("tenants/acme/dev/raw/{id}/gone-{i}.bin")).unwrap()
        })
        .collect();
    const CT: &str = "application/octet-stream";
    futures_util::stream::iter(&keys)
        .map(|key| app.put_object(key, CT, cairn::storage::PRIVATE_IMMUTABLE, b"gone".to_vec()))
        .buffer_unordered(16)
        .collect::<()>()
        .await;
    let now = Utc::now();
    for chunk in keys.chunks(500) {
        let rows = chunk.iter().map(|key| blob::ActiveModel {
            id: sea_orm::Set(uuid::Uuid::now_v7()),
            tenant_id: sea_orm::Set("acme".into()),
            env: sea_orm::Set("dev".into()),
            visibility: sea_orm::Set(blob::VISIBILITY_PRIVATE.into()),
            key: sea_orm::Set(key.as_str().to_owned()),
            sha256: sea_orm::Set(None),
            size_bytes: sea_orm::Set(4),
            content_type: sea_orm::Set(CT.into()),
            state: sea_orm::Set(blob::STATE_DELETING.into()),
            ref_count: sea_orm::Set(0),
            upload_id: sea_orm::Set(None),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
        });
        blob::Entity::insert_many(rows)
            .exec(&app.state.db)
            .await
            .unwrap();
    }

    let r = sweep(&app, now).await;
    assert!(!r.has_errors(), "{r:?}");
    assert_eq!(
        r.objects_deleted,
        lifecycle::report::Tally {
            count: N as u64,
            bytes: 4 * N as u64
        }
    );
    assert_eq!(r.objects_pending, 0);
    let left = blob::Entity::find()
        .filter(blob::Column::State.eq(blob::STATE_DELETING))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(left, 0, "every removed object's row goes");
    for key in [&keys[0], &keys[999], &keys[1000], &keys[1999], &keys[N - 1]] {
        assert!(!object_exists(&app, key.as_str()).await, "{key} is gone");
    }
    let mut listed = 0;
    let mut next = None;
    loop {
        let page = app
            .state
            .store
            .list_objects("tenants/acme/dev/raw/", next)
            .await
            .unwrap();
        listed += page.objects.len();
        next = page.next;
        if next.is_none() {
            break;
        }
    }
    assert_eq!(listed, 0, "no object of the {N} is left");
    assert!(
        object_exists(&app, &key_of(&kept)).await,
        "live content stays"
    );
}

#[tokio::test]
async fn a_crash_after_any_step_loses_nothing_and_the_next_sweep_finishes() {
    for at in [
        CrashPoint::AbandonedCommitted,
        CrashPoint::PurgeCommitted,
        CrashPoint::ObjectsDeleted,
    ] {
        let app = TestApp::spawn().await;
        let acme = app.owner("acme", "dev");
        let shared = sample(PNG, 960);
        let a = app.stream_artifact(&acme, PNG, &shared, json!({})).await;
        let live = app
            .stream_artifact(&acme, PNG, &shared, json!({"run_id": "r2"}))
            .await;
        let lone = app
            .stream_artifact(&acme, PNG, &sample(PNG, 961), json!({}))
            .await;
        delete(&app, &acme, id_of(&a)).await;
        delete(&app, &acme, id_of(&lone)).await;
        let p = app
            .presign(
                &acme,
                "abandoned.bin",
                "application/octet-stream",
                b"abandoned",
            )
            .await;
        assert_eq!(
            app.put_upload(&p, b"abandoned").await.status(),
            StatusCode::OK
        );
        let when = Utc::now() + days(9);

        let opts = SweepOptions {
            crash_after: Some(at),
            ..Default::default()
        };
        let err = jobs::lifecycle::run(&app.state.lifecycle, Trigger::Api, &opts, when)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Crashed(_)), "{at:?}: {err}");
        // The live item is intact whatever was interrupted.
        let res = app
            .get(&acme, &format!("/artifacts/{}/content", id_of(&live)))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{at:?}");
        assert_eq!(res.bytes().await.unwrap().as_ref(), shared.as_slice());

        // Another process finds the dead one's lease held until it runs out; then it sweeps.
        let mut restarted = another_process(&app, false);
        let busy =
            jobs::lifecycle::run(&restarted, Trigger::Api, &SweepOptions::default(), when).await;
        assert!(
            matches!(busy, Err(RunError::Busy(_))),
            "{at:?}: the lease is still held"
        );
        job_lease::Entity::update_many()
            .col_expr(
                job_lease::Column::ExpiresAt,
                Expr::value(Utc::now() - Duration::seconds(1)),
            )
            .exec(&app.state.db)
            .await
            .unwrap();
        let run = jobs::lifecycle::run(&restarted, Trigger::Api, &SweepOptions::default(), when)
            .await
            .unwrap();
        assert_eq!(
            run.status,
            lifecycle_run::STATUS_SUCCEEDED,
            "{at:?}: {:?}",
            run.report
        );

        // Finished: the two deleted items purged, the lone and abandoned objects gone, the
        // shared object kept, nothing left `deleting`, and nothing more to do.
        assert!(status_in_catalog(&app, id_of(&a)).await.is_none(), "{at:?}");
        assert!(
            status_in_catalog(&app, id_of(&lone)).await.is_none(),
            "{at:?}"
        );
        assert_eq!(
            status_in_catalog(&app, p["asset_id"].as_str().unwrap())
                .await
                .unwrap(),
            "failed"
        );
        assert!(!object_exists(&app, &key_of(&lone)).await, "{at:?}");
        assert!(object_exists(&app, &key_of(&live)).await, "{at:?}");
        assert_eq!(app.object_count().await, 1, "{at:?}");
        let deleting = blob::Entity::find()
            .filter(blob::Column::State.eq(blob::STATE_DELETING))
            .count(&app.state.db)
            .await
            .unwrap();
        assert_eq!(deleting, 0, "{at:?}");
        let interrupted = lifecycle_run::Entity::find()
            .filter(lifecycle_run::Column::Status.eq(lifecycle_run::STATUS_FAILED))
            .all(&app.state.db)
            .await
            .unwrap();
        assert_eq!(interrupted.len(), 1, "{at:?}: the crashed run is closed");
        restarted.holder = jobs::holder_id();
        let again = jobs::lifecycle::run(&restarted, Trigger::Api, &SweepOptions::default(), when)
            .await
            .unwrap();
        let r: Report = serde_json::from_value(again.report).unwrap();
        assert_eq!(r, Report::default(), "{at:?}");
    }
}

#[tokio::test]
async fn one_run_per_scheduled_tick() {
    let app = TestApp::spawn().await;
    let tick = Utc::now();
    let lc = &app.state.lifecycle;
    let second = another_process(&app, false);
    let opts = SweepOptions::default();
    let first = jobs::lifecycle::run(lc, Trigger::Schedule(tick), &opts, tick)
        .await
        .unwrap();
    assert_eq!(first.status, lifecycle_run::STATUS_SUCCEEDED);
    let other = jobs::lifecycle::run(&second, Trigger::Schedule(tick), &opts, tick).await;
    assert!(matches!(other, Err(RunError::TickTaken)));
    let next = tick + Duration::minutes(15);
    jobs::lifecycle::run(&second, Trigger::Schedule(next), &opts, next)
        .await
        .unwrap();
    assert_eq!(
        jobs::lifecycle::list(&app.state.db, 10, None)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn ticks_name_the_scheduled_instant() {
    let (_, cron) = cairn::config::parse_cron("CAIRN_LIFECYCLE_CRON", "*/15 * * * *").unwrap();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let tick = at("2026-11-24T10:15:00Z");
    for fired in [
        "2026-11-24T10:15:00Z",
        "2026-11-24T10:15:00.700Z",
        "2026-11-24T10:16:59Z",
    ] {
        assert_eq!(jobs::tick_of(&cron, at(fired)), tick, "{fired}");
    }
    assert_eq!(
        jobs::tick_of(&cron, at("2026-11-24T10:30:00.100Z")),
        at("2026-11-24T10:30:00Z")
    );
}

// ---- the operator API ----

#[tokio::test]
async fn admin_routes_are_for_operators_only() {
    let app = TestApp::spawn().await;
    let owner = app.token("alice", &[("acme", cairn::auth::Role::Owner)]);
    let routes: [(reqwest::Method, &str, Option<Value>); 4] = [
        (
            reqwest::Method::PUT,
            "/admin/tenants/acme/retention",
            Some(json!({"rules": []})),
        ),
        (reqwest::Method::GET, "/admin/tenants/acme/retention", None),
        (reqwest::Method::POST, "/admin/lifecycle/run", None),
        (reqwest::Method::GET, "/admin/lifecycle/runs", None),
    ];
    for (method, path, body) in routes {
        for (token, status, code) in [
            (None, StatusCode::UNAUTHORIZED, "unauthorized"),
            (Some(owner.clone()), StatusCode::FORBIDDEN, "forbidden"),
        ] {
            let mut req = app
                .client
                .request(method.clone(), format!("{}{path}", app.base));
            if let Some(t) = token {
                req = req
                    .bearer_auth(t)
                    .header("x-tenant-id", "acme")
                    .header("x-env", "dev");
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            crate::helpers::problem(req.send().await.unwrap(), status, code).await;
        }
    }
    // Nothing ran and nothing changed.
    assert_eq!(
        lifecycle_run::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn retention_rules_are_validated_and_kept_per_tenant() {
    let app = TestApp::spawn().await;
    let op = app.operator_token();
    let put = |tenant: &'static str, body: String| {
        app.client
            .put(format!("{}/admin/tenants/{tenant}/retention", app.base))
            .bearer_auth(&op)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (tenant, body, code) in [
        ("Bad!", json!({"rules": []}).to_string(), "invalid_tenant"),
        ("acme", "{\"rules\": [".into(), "invalid_json"),
        ("acme", json!({"rule": []}).to_string(), "invalid_request"),
        (
            "acme",
            json!({"rules": [{"days": -1}]}).to_string(),
            "invalid_request",
        ),
        (
            "acme",
            json!({"rules": [{"days": 0}]}).to_string(),
            "invalid_retention",
        ),
        (
            "acme",
            json!({"rules": [{"env": "qa", "days": 3}]}).to_string(),
            "invalid_retention",
        ),
        (
            "acme",
            json!({"rules": [{"kind": "movie", "days": 3}]}).to_string(),
            "invalid_retention",
        ),
        (
            "acme",
            json!({"rules": [{"days": 3}, {"days": 4}]}).to_string(),
            "invalid_retention",
        ),
    ] {
        let res = put(tenant, body.clone()).await.unwrap();
        crate::helpers::problem(res, StatusCode::BAD_REQUEST, code).await;
    }
    assert_eq!(
        entity::retention_policy::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0,
        "no partial writes"
    );

    let res = put(
        "acme",
        json!({"rules": [{"env": "prod", "kind": "raw", "days": 7}, {"days": null}]}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["tenant_id"], "acme");
    assert_eq!(body["rules"].as_array().unwrap().len(), 2);
    let get = |tenant: &str| {
        app.client
            .get(format!("{}/admin/tenants/{tenant}/retention", app.base))
            .bearer_auth(&op)
            .send()
    };
    let acme: Value = get("acme").await.unwrap().json().await.unwrap();
    assert!(acme["rules"]
        .as_array()
        .unwrap()
        .contains(&json!({"env": "prod", "kind": "raw", "days": 7})));
    let other: Value = get("other").await.unwrap().json().await.unwrap();
    assert_eq!(other["rules"], json!([]), "rules never leak across tenants");
    // Replacing with an empty list removes them.
    put("acme", json!({"rules": []}).to_string()).await.unwrap();
    let acme: Value = get("acme").await.unwrap().json().await.unwrap();
    assert_eq!(acme["rules"], json!([]));
}

#[tokio::test]
async fn the_run_endpoint_sweeps_reports_and_refuses_while_a_sweep_runs() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(&acme, PNG, &sample(PNG, 990), json!({}))
        .await;
    let op = app.operator_token();
    let run = |q: &str| {
        app.client
            .post(format!("{}/admin/lifecycle/run{q}", app.base))
            .bearer_auth(&op)
            .send()
    };
    crate::helpers::problem(
        run("?dry_run=maybe").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    crate::helpers::problem(
        run("?force=1").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    let res = run("?dry_run=true").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["trigger"], "api");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["report"]["purged"]["count"], 0);

    // Another holder's live lease: 409, and nothing runs.
    job_lease::Entity::insert(job_lease::ActiveModel {
        name: sea_orm::Set(jobs::lifecycle::LEASE.into()),
        holder: sea_orm::Set("elsewhere:1:abc".into()),
        expires_at: sea_orm::Set(Utc::now() + Duration::minutes(5)),
    })
    .exec(&app.state.db)
    .await
    .unwrap();
    crate::helpers::problem(
        run("").await.unwrap(),
        StatusCode::CONFLICT,
        "lifecycle_running",
    )
    .await;
    job_lease::Entity::delete_many()
        .exec(&app.state.db)
        .await
        .unwrap();
    let res = run("").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        status_in_catalog(&app, id_of(&a)).await.unwrap(),
        "available"
    );

    let list = |q: &str| {
        app.client
            .get(format!("{}/admin/lifecycle/runs{q}", app.base))
            .bearer_auth(&op)
            .send()
    };
    let runs: Value = list("?limit=10").await.unwrap().json().await.unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["dry_run"], false, "newest first");
    assert_eq!(runs[1]["dry_run"], true);
    for q in ["?limit=0", "?limit=x", "?before=yesterday", "?page=2"] {
        crate::helpers::problem(
            list(q).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn the_cli_runs_a_sweep_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let cairn = |args: &[&str]| {
        crate::helpers::cairn_command(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    // The sweep works on an existing catalog: `cairn migrate` creates it.
    assert!(cairn(&["migrate"]).status.success());
    let out = cairn(&["lifecycle", "run", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(stdout.contains("purged (past grace)"), "{stdout}");
    assert!(stdout.contains("bytes reclaimed"), "{stdout}");
    let out = cairn(&["lifecycle", "run", "--json"]);
    assert!(out.status.success());
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["trigger"], "cli");
    assert_eq!(run["status"], "succeeded");
    let help = cairn(&["lifecycle", "run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for s in [
        "--dry-run",
        "--fix-orphans",
        "CAIRN_PURGE_GRACE_SECS",
        "CAIRN_PENDING_TTL_SECS",
    ] {
        assert!(help.contains(s), "{s} missing from --help");
    }
}
