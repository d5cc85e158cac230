//! Artifacts end to end: presigned and streamed uploads, the one-shot kinds (replay, audit,
//! preview), long-poll, the run manifest, soft delete, legal hold, lineage and dedup.
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, sha256_hex, Caller, TestApp};

async fn json_of(res: reqwest::Response, status: StatusCode) -> Value {
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn artifact(app: &TestApp, who: &Caller, id: &str) -> Value {
    json_of(
        app.get(who, &format!("/artifacts/{id}")).await,
        StatusCode::OK,
    )
    .await
}

async fn fetch(app: &TestApp, url: &str) -> Vec<u8> {
    let res = app.client.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.bytes().await.unwrap().to_vec()
}

async fn content(app: &TestApp, who: &Caller, id: &str) -> Vec<u8> {
    let res = app.get(who, &format!("/artifacts/{id}/content")).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn presigned_upload_then_complete() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/png", 3000);
    let res = app
        .create_artifact(
            &acme,
            "image/png",
            &bytes,
            json!({"filename": "hero shot.png", "sha256": sha256_hex(&bytes),
                   "lineage": {"workspace_id": "w1", "project_id": "p1", "canvas_id": "c1", "rev": 7,
                               "correlation_id": "corr-1", "actor_id": "skill:render"}}),
        )
        .await;
    let created = json_of(res, StatusCode::CREATED).await;
    let a = &created["artifact"];
    let id = a["artifact_id"].as_str().unwrap().to_owned();
    assert_eq!(a["status"], "pending");
    assert_eq!(a["kind"], "image");
    assert_eq!(a["visibility"], "private");
    assert_eq!(a["run_id"], "r1");
    assert!(a.get("url").is_none(), "no URL before the bytes exist");
    assert_eq!(a["lineage"]["rev"], 7);
    assert_eq!(a["lineage"]["actor_id"], "skill:render");
    let key = format!("tenants/acme/dev/runs/r1/image/{id}/hero shot.png");
    assert!(a["uri"].as_str().unwrap().ends_with(&key), "{}", a["uri"]);
    assert_eq!(created["upload"]["method"], "PUT");

    // Completing before the upload fails the artifact... so upload first.
    let up = app.put_upload(&created, &bytes).await;
    assert!(up.status().is_success(), "{}", up.status());
    let done = json_of(
        app.post(&acme, &format!("/artifacts/{id}/complete"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["status"], "available");
    assert_eq!(done["sha256"], sha256_hex(&bytes));
    // Completing again is idempotent.
    let again = json_of(
        app.request(&acme, Method::POST, &format!("/artifacts/{id}/complete"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["status"], "available");

    let got = artifact(&app, &acme, &id).await;
    let url = got["url"].as_str().unwrap();
    assert_eq!(fetch(&app, url).await, bytes);
    assert_eq!(content(&app, &acme, &id).await, bytes);

    let kinds: Vec<String> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.subject_id.to_string() == id)
        .map(|e| {
            assert_eq!(e.lineage["canvas_id"], "c1");
            assert_eq!(e.lineage["run_id"], "r1");
            assert_eq!(e.tenant_id, "acme");
            e.event_type
        })
        .collect();
    assert_eq!(kinds, ["artifact.created", "artifact.available"]);
}

#[tokio::test]
async fn completing_without_an_upload_fails_the_artifact() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/png", 100);
    let created = json_of(
        app.create_artifact(&acme, "image/png", &bytes, json!({}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["artifact"]["artifact_id"].as_str().unwrap();
    problem(
        app.post(&acme, &format!("/artifacts/{id}/complete"), &json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "object_missing",
    )
    .await;
    assert_eq!(artifact(&app, &acme, id).await["status"], "failed");
    problem(
        app.post(&acme, &format!("/artifacts/{id}/complete"), &json!({}))
            .await,
        StatusCode::CONFLICT,
        "artifact_failed",
    )
    .await;
}

#[tokio::test]
async fn public_items_live_under_public_and_never_share_private_blobs() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/webp", 500);
    let private = app
        .stream_artifact(&acme, "image/webp", &bytes, json!({}))
        .await;
    let public = app
        .stream_artifact(&acme, "image/webp", &bytes, json!({"visibility": "public"}))
        .await;
    let id = public["artifact_id"].as_str().unwrap();
    assert_eq!(public["visibility"], "public");
    assert!(public["uri"]
        .as_str()
        .unwrap()
        .contains(&format!("public/tenants/acme/dev/runs/r1/image/{id}/")));
    assert_ne!(private["uri"], public["uri"]);
    let f = app.footprint().await;
    assert_eq!((f.blobs, f.objects), (2, 2));
}

#[tokio::test]
async fn streamed_uploads_dedup_within_tenant_env_and_visibility() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("audio/ogg", 2048);
    let first = app
        .stream_artifact(&acme, "audio/ogg", &bytes, json!({"filename": "a.ogg"}))
        .await;
    let second = app
        .stream_artifact(
            &acme,
            "audio/ogg",
            &bytes,
            json!({"filename": "b.ogg", "run_id": "r2"}),
        )
        .await;
    assert_eq!(
        first["uri"], second["uri"],
        "the second shares the first's object"
    );
    let f = app.footprint().await;
    assert_eq!((f.blobs, f.objects, f.artifacts), (1, 1, 2));
    // Each downloads under its own name.
    let res = app
        .client
        .get(second["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let cd = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cd.contains("b.ogg"), "{cd}");
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Declaring the sha256 of stored content: available at once, nothing to upload.
    let res = app
        .create_artifact(
            &acme,
            "audio/ogg",
            &bytes,
            json!({"sha256": sha256_hex(&bytes), "filename": "c.ogg"}),
        )
        .await;
    let created = json_of(res, StatusCode::CREATED).await;
    assert_eq!(created["artifact"]["status"], "available");
    assert!(created["upload"].is_null());
    assert_eq!(app.footprint().await.objects, 1);
    let blob_refs: Vec<i32> = entity::blob::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.ref_count)
        .collect();
    assert_eq!(blob_refs, [3]);

    // Another tenant with the same bytes gets its own object.
    let beta = app.owner("beta", "dev");
    app.stream_artifact(&beta, "audio/ogg", &bytes, json!({}))
        .await;
    assert_eq!(app.footprint().await.objects, 2);
}

use sea_orm::EntityTrait;

#[tokio::test]
async fn streamed_content_supports_range_and_refuses_a_second_upload() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("video/webm", 10_000);
    let a = app
        .stream_artifact(
            &acme,
            "video/webm",
            &bytes,
            json!({"filename": "clip.webm"}),
        )
        .await;
    let id = a["artifact_id"].as_str().unwrap();
    let res = app
        .request(&acme, Method::GET, &format!("/artifacts/{id}/content"))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &bytes[100..200]);
    problem(
        app.put_content(&acme, id, &bytes).await,
        StatusCode::CONFLICT,
        "not_pending",
    )
    .await;
}

#[tokio::test]
async fn replay_round_trips_as_json() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let keyframes =
        json!([{"t": 0, "state": {"x": 1}}, {"t": 1.5, "state": {"x": 2, "note": "ünïcode"}}]);
    let summary = json!({"frames": 2, "duration_s": 1.5});
    let res = app
        .post(
            &acme,
            "/artifacts/replay",
            &json!({"run_id": "run-42", "keyframes": keyframes, "summary": summary,
                    "lineage": {"correlation_id": "c-9"}}),
        )
        .await;
    let created = json_of(res, StatusCode::CREATED).await;
    let a = &created["artifact"];
    assert_eq!(a["kind"], "replay");
    assert_eq!(a["status"], "available");
    assert_eq!(a["content_type"], "application/json");
    assert_eq!(a["filename"], "replay.json");
    let id = a["artifact_id"].as_str().unwrap();
    let stored: Value = serde_json::from_slice(&content(&app, &acme, id).await).unwrap();
    assert_eq!(stored["keyframes"], keyframes);
    assert_eq!(stored["summary"], summary);
    assert_eq!(stored["run_id"], "run-42");
    assert_eq!(
        a["size_bytes"].as_u64().unwrap() as usize,
        serde_json::to_vec(&stored).unwrap().len()
    );
}

#[tokio::test]
async fn audit_is_a_structured_empty_report() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let created = json_of(
        app.post(&acme, "/artifacts/audit", &json!({"run_id": "r1"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["artifact"]["artifact_id"].as_str().unwrap();
    assert_eq!(created["artifact"]["kind"], "audit");
    let report: Value = serde_json::from_slice(&content(&app, &acme, id).await).unwrap();
    assert_eq!(report["schema"], "cairn.audit.v1");
    assert_eq!(report["status"], "empty");
    assert_eq!(report["run_id"], "r1");
    assert_eq!(report["findings"], json!([]));
    assert_eq!(report["checks"], json!([]));
    assert_eq!(report["summary"]["checks"], 0);
}

#[tokio::test]
async fn previews_from_bytes_and_from_a_render_ref() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let png = sample("image/png", 700);
    let res = app
        .request(
            &acme,
            Method::POST,
            "/artifacts/preview?run_id=r1&filename=thumb.png",
        )
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    let created = json_of(res, StatusCode::CREATED).await;
    assert_eq!(created["artifact"]["kind"], "preview");
    assert_eq!(created["artifact"]["status"], "available");
    let id = created["artifact"]["artifact_id"].as_str().unwrap();
    assert_eq!(content(&app, &acme, id).await, png);

    let render = "https://render.example.com/frames/r1/0001.png";
    let created = json_of(
        app.post(
            &acme,
            "/artifacts/preview",
            &json!({"run_id": "r1", "uri": render}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let a = &created["artifact"];
    assert_eq!(a["status"], "available");
    assert_eq!(a["uri"], render);
    assert_eq!(a["url"], render);
    let id = a["artifact_id"].as_str().unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects
        .get(format!("{}/artifacts/{id}/content", app.base))
        .bearer_auth(acme.token.as_ref().unwrap())
        .header("x-tenant-id", "acme")
        .header("x-env", "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()["location"], render);
}

#[tokio::test]
async fn long_poll_wakes_when_the_upload_lands_and_times_out_otherwise() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/gif", 400);
    let created = json_of(
        app.create_artifact(&acme, "image/gif", &bytes, json!({}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Times out with the current status.
    let t = Instant::now();
    let v = artifact(&app, &acme, &format!("{id}?wait=1")).await;
    assert_eq!(v["status"], "pending");
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());

    // Wakes early when a concurrent upload completes.
    let waiter = {
        let (client, base, acme, id) = (
            app.client.clone(),
            app.base.clone(),
            acme.clone(),
            id.clone(),
        );
        tokio::spawn(async move {
            let t = Instant::now();
            let res = client
                .get(format!("{base}/artifacts/{id}?wait=30"))
                .bearer_auth(acme.token.unwrap())
                .header("x-tenant-id", "acme")
                .header("x-env", "dev")
                .send()
                .await
                .unwrap();
            (t.elapsed(), res.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.put_content(&acme, &id, &bytes).await.status(),
        StatusCode::OK
    );
    let (took, v) = waiter.await.unwrap();
    assert_eq!(v["status"], "available");
    assert!(v["url"].is_string());
    assert!(took < Duration::from_secs(10), "woke after {took:?}");
}

#[tokio::test]
async fn the_run_manifest_lists_the_runs_artifacts_in_order() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let mut expected = vec![];
    for (i, ct) in ["image/png", "video/mp4", "audio/wav", "application/zip"]
        .iter()
        .enumerate()
    {
        let bytes = sample(ct, 300 + i);
        let a = app
            .stream_artifact(&acme, ct, &bytes, json!({"filename": format!("f{i}")}))
            .await;
        expected.push(a["artifact_id"].clone());
    }
    // A pending one is listed (without a URL); a deleted one and another run's are not.
    let pending = json_of(
        app.create_artifact(&acme, "image/jpeg", &sample("image/jpeg", 50), json!({}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    expected.push(pending["artifact"]["artifact_id"].clone());
    let gone = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 99), json!({}))
        .await;
    let res = app
        .request(
            &acme,
            Method::DELETE,
            &format!("/artifacts/{}", gone["artifact_id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.stream_artifact(
        &acme,
        "image/png",
        &sample("image/png", 98),
        json!({"run_id": "r2"}),
    )
    .await;

    let m = json_of(app.get(&acme, "/runs/r1/artifacts").await, StatusCode::OK).await;
    assert_eq!(m["run_id"], "r1");
    let items = m["artifacts"].as_array().unwrap();
    let ids: Vec<Value> = items.iter().map(|a| a["artifact_id"].clone()).collect();
    assert_eq!(ids, expected);
    for a in &items[..4] {
        assert_eq!(a["status"], "available");
        let body = fetch(&app, a["url"].as_str().unwrap()).await;
        assert_eq!(body.len() as u64, a["size_bytes"].as_u64().unwrap());
    }
    assert!(items[4].get("url").is_none());
    let empty = json_of(
        app.get(&acme, "/runs/nothing-here/artifacts").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(empty["artifacts"], json!([]));
}

#[tokio::test]
async fn soft_delete_and_legal_hold() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 64), json!({}))
        .await;
    let id = a["artifact_id"].as_str().unwrap();
    let path = format!("/artifacts/{id}");

    let held = json_of(
        app.put_json(&acme, &format!("{path}/legal-hold"), &json!({"hold": true}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(held["legal_hold"], true);
    problem(
        app.request(&acme, Method::DELETE, &path)
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "legal_hold",
    )
    .await;
    assert_eq!(artifact(&app, &acme, id).await["status"], "available");

    let released = json_of(
        app.put_json(
            &acme,
            &format!("{path}/legal-hold"),
            &json!({"hold": false}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(released["legal_hold"], false);
    let res = app
        .request(&acme, Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        app.get(&acme, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        app.request(&acme, Method::DELETE, &path)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Soft: the row and the object stay until the lifecycle sweep purges them.
    let f = app.footprint().await;
    assert_eq!((f.artifacts, f.objects), (1, 1));
    let kinds: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(kinds.contains(&"artifact.legal_hold".to_owned()));
    assert!(kinds.contains(&"artifact.deleted".to_owned()));
}

#[tokio::test]
async fn lineage_follows_derived_from_through_artifacts_to_raw_assets() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let asset = app.store(&acme, "source.bin", b"raw source").await;
    let asset_id = asset["asset_id"].as_str().unwrap();
    let base = app
        .stream_artifact(
            &acme,
            "image/png",
            &sample("image/png", 80),
            json!({"lineage": {"derived_from": [asset_id]}}),
        )
        .await;
    let base_id = base["artifact_id"].as_str().unwrap();
    let top = app
        .stream_artifact(
            &acme,
            "video/mp4",
            &sample("video/mp4", 80),
            json!({"lineage": {"derived_from": [base_id, asset_id], "actor_id": "skill:cut"}}),
        )
        .await;
    assert_eq!(top["lineage"]["derived_from"], json!([base_id, asset_id]));
    let top_id = top["artifact_id"].as_str().unwrap();
    let chain = json_of(
        app.get(&acme, &format!("/artifacts/{top_id}/lineage"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(chain["artifact"]["artifact_id"], top_id);
    let parents = chain["derived_from"].as_array().unwrap();
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[0]["type"], "artifact");
    assert_eq!(parents[0]["artifact"]["artifact_id"], base_id);
    let grand = parents[0]["derived_from"].as_array().unwrap();
    assert_eq!(grand.len(), 1);
    assert_eq!(grand[0]["type"], "raw_asset");
    assert_eq!(grand[0]["raw_asset"]["asset_id"], asset_id);
    assert_eq!(parents[1]["type"], "raw_asset");
    // A deleted parent shows as unavailable, not as data.
    app.request(&acme, Method::DELETE, &format!("/artifacts/{base_id}"))
        .send()
        .await
        .unwrap();
    let chain = json_of(
        app.get(&acme, &format!("/artifacts/{top_id}/lineage"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        chain["derived_from"][0],
        json!({"type": "unavailable", "id": base_id})
    );
}

#[tokio::test]
async fn an_interrupted_verification_resumes_from_the_catalog() {
    // What `complete` leaves for a multipart upload (artifact `uploading`, blob `verifying`) is
    // all the verifier needs: set that state by hand, as a crash would leave it, and recover.
    use sea_orm::{sea_query::Expr, ColumnTrait, QueryFilter};
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/png", 1000);
    let created = json_of(
        app.create_artifact(&acme, "image/png", &bytes, json!({}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(app.put_upload(&created, &bytes).await.status().is_success());
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
    assert_eq!(artifact(&app, &acme, &id).await["status"], "uploading");
    cairn::domain::artifacts::verify::recover(&app.state)
        .await
        .unwrap();
    let v = artifact(&app, &acme, &format!("{id}?wait=20")).await;
    assert_eq!(v["status"], "available");
    assert_eq!(v["sha256"], sha256_hex(&bytes));
}
