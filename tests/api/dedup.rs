//! Dedup within a tenant+env: never across tenants or envs, and safe when uploads race.
use entity::blob;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::helpers::{sha256_hex, TestApp};

async fn presign_with_sha(
    app: &TestApp,
    who: &crate::helpers::Caller,
    name: &str,
    bytes: &[u8],
) -> Value {
    let res = app
        .post(
            who,
            "/storage/raw/presign-upload",
            &json!({"filename": name, "content_type": "application/octet-stream", "size_bytes": bytes.len(), "sha256": sha256_hex(bytes)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn known_content_is_registered_at_once_and_shares_the_blob() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"shared content".to_vec();
    let first = app.store(&acme, "first.bin", &bytes).await;

    let p = presign_with_sha(&app, &acme, "second.bin", &bytes).await;
    assert_eq!(p["deduplicated"], true);
    assert_eq!(p["status"], "registered");
    assert!(p["upload"].is_null());
    assert_ne!(p["asset_id"], first["asset_id"]);

    let blobs = blob::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].ref_count, 2);
    assert_eq!(app.footprint().await.objects, 1);

    // The second asset downloads under its own name.
    let id = p["asset_id"].as_str().unwrap();
    let res = app
        .client
        .get(app.download_url(&acme, id).await)
        .send()
        .await
        .unwrap();
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("second.bin"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Its first register call supplies the descriptive fields; after that it is immutable.
    let reg = |meta: Value| {
        json!({"asset_id": id, "sha256": sha256_hex(&bytes), "size_bytes": bytes.len(),
               "content_type": "application/octet-stream", "metadata": meta})
    };
    let res = app
        .post(&acme, "/storage/raw/register", &reg(json!({"a": 1})))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["metadata"],
        json!({"a": 1})
    );
    let res = app
        .post(&acme, "/storage/raw/register", &reg(json!({"a": 2})))
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    let kinds: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(kinds.contains(&"raw.deduplicated".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn dedup_never_crosses_tenants_or_envs() {
    let app = TestApp::spawn().await;
    let bytes = b"tenant private".to_vec();
    app.store(&app.owner("acme", "dev"), "a.bin", &bytes).await;
    for who in [app.owner("beta", "dev"), app.owner("acme", "prod")] {
        let p = presign_with_sha(&app, &who, "b.bin", &bytes).await;
        assert!(
            p.get("deduplicated").is_none(),
            "deduplicated across scopes: {p}"
        );
        assert_eq!(p["upload"]["method"], "PUT");
    }
}

#[tokio::test]
async fn a_declared_size_that_contradicts_known_content_is_refused() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"sized".to_vec();
    app.store(&acme, "a.bin", &bytes).await;
    let before = app.footprint().await;
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-upload",
            &json!({"filename": "b.bin", "content_type": "text/plain", "size_bytes": 99, "sha256": sha256_hex(&bytes)}),
        )
        .await;
    crate::helpers::problem(res, StatusCode::UNPROCESSABLE_ENTITY, "size_mismatch").await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn the_same_content_uploaded_twice_ends_in_one_blob() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bytes = b"uploaded twice without a sha256".to_vec();
    let a = app
        .presign(&acme, "a.bin", "application/octet-stream", &bytes)
        .await;
    let b = app
        .presign(&acme, "b.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(app.put_upload(&a, &bytes).await.status(), StatusCode::OK);
    assert_eq!(app.put_upload(&b, &bytes).await.status(), StatusCode::OK);
    assert_eq!(app.footprint().await.objects, 2);
    for p in [&a, &b] {
        let res = app
            .register(
                &acme,
                p["asset_id"].as_str().unwrap(),
                &bytes,
                "application/octet-stream",
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let blobs = blob::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert_eq!(blobs[0].ref_count, 2);
    assert_eq!(
        app.footprint().await.objects,
        1,
        "the duplicate object was kept"
    );
    for p in [&a, &b] {
        let url = app
            .download_url(&acme, p["asset_id"].as_str().unwrap())
            .await;
        let body = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.as_ref(), bytes.as_slice());
    }
}
