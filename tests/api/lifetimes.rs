//! Expiry and URL lifetimes (issue 15 §4, §5): an artifact past its `expires_at` is gone for
//! readers at once (the sweep deletes it later); `expires_in` sets the lifetime of the URLs of
//! `GET /artifacts/{id}`, the run manifest and signed cookies.
use cairn::{
    jobs::{self, Trigger},
    lifecycle::SweepOptions,
};
use chrono::{Duration, Utc};
use entity::artifact;
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, Caller, TestApp};

/// Moves an artifact's `expires_at` into the past, as time passing would.
async fn expire(app: &TestApp, id: &str) {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let mut a = artifact::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    a.expires_at = Set(Some(cairn::domain::catalog_time(
        Utc::now() - Duration::seconds(1),
    )));
    a.update(&app.state.db).await.unwrap();
}

fn id_of(a: &Value) -> String {
    a["artifact_id"].as_str().unwrap().to_owned()
}

async fn manifest_ids(app: &TestApp, who: &Caller, run: &str) -> Vec<String> {
    let res = app.get(who, &format!("/runs/{run}/artifacts")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let m: Value = res.json().await.unwrap();
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test]
async fn an_expired_artifact_is_gone_for_readers_at_once() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let gone = app
        .stream_artifact(
            &acme,
            "image/png",
            &sample("image/png", 700),
            json!({"expires_at": later}),
        )
        .await;
    let kept = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 701), json!({}))
        .await;
    let child = app
        .stream_artifact(
            &acme,
            "image/png",
            &sample("image/png", 702),
            json!({"lineage": {"derived_from": [id_of(&gone)]}}),
        )
        .await;
    // Before its time it reads as usual.
    let id = id_of(&gone);
    assert_eq!(
        app.get(&acme, &format!("/artifacts/{id}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(manifest_ids(&app, &acme, "r1").await.len(), 3);

    expire(&app, &id).await;
    for path in [
        format!("/artifacts/{id}"),
        format!("/artifacts/{id}?wait=1"),
        format!("/artifacts/{id}/content"),
        format!("/artifacts/{id}/lineage"),
    ] {
        problem(
            app.get(&acme, &path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    let res = app
        .request(&acme, Method::DELETE, &format!("/artifacts/{id}"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    // The manifest leaves it out; its child's lineage shows it unavailable.
    assert_eq!(
        manifest_ids(&app, &acme, "r1").await,
        vec![id_of(&kept), id_of(&child)]
    );
    let chain: Value = app
        .get(&acme, &format!("/artifacts/{}/lineage", id_of(&child)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chain["derived_from"][0]["type"], "unavailable", "{chain}");
    // Nothing new may derive from it.
    let res = app
        .create_artifact(
            &acme,
            "image/png",
            &sample("image/png", 703),
            json!({"lineage": {"derived_from": [id]}}),
        )
        .await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "unknown_lineage_ref").await;

    // The sweep still does the deleting.
    let opts = SweepOptions::default();
    jobs::lifecycle::run(&app.state.lifecycle, Trigger::Api, &opts, Utc::now())
        .await
        .unwrap();
    let row = artifact::Entity::find_by_id(uuid::Uuid::parse_str(&id).unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, artifact::STATUS_DELETED);
}

/// When a URL stops working, as seconds from now: Cairn's `exp=` (an instant), S3's
/// `X-Amz-Date` + `X-Amz-Expires`, or CloudFront's `Expires=`.
fn url_lifetime(url: &str) -> i64 {
    let q: std::collections::HashMap<String, String> = reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let now = Utc::now().timestamp();
    if let Some(exp) = q.get("exp").or_else(|| q.get("Expires")) {
        return exp.parse::<i64>().unwrap() - now;
    }
    let signed = chrono::NaiveDateTime::parse_from_str(&q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc()
        .timestamp();
    signed + q["X-Amz-Expires"].parse::<i64>().unwrap() - now
}

fn near(got: i64, want: i64) -> bool {
    (got - want).abs() <= 5
}

#[tokio::test]
async fn expires_in_sets_the_lifetime_of_read_urls() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 800), json!({}))
        .await;
    let id = id_of(&a);
    let url = |v: &Value| v["url"].as_str().unwrap().to_owned();

    let v: Value = app
        .get(&acme, &format!("/artifacts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(near(url_lifetime(&url(&v)), 3600), "the default: 1 hour");
    let v: Value = app
        .get(&acme, &format!("/artifacts/{id}?expires_in=60"))
        .await
        .json()
        .await
        .unwrap();
    assert!(near(url_lifetime(&url(&v)), 60), "{}", url(&v));
    // A URL that short really expires.
    let v: Value = app
        .get(&acme, &format!("/artifacts/{id}?expires_in=1"))
        .await
        .json()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = app.client.get(url(&v)).send().await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());

    let m: Value = app
        .get(&acme, "/runs/r1/artifacts?expires_in=604800")
        .await
        .json()
        .await
        .unwrap();
    assert!(near(url_lifetime(&url(&m["artifacts"][0])), 604_800));

    for bad in ["0", "604801", "-5", "soon", "1.5", ""] {
        for path in [
            format!("/artifacts/{id}?expires_in={bad}"),
            format!("/runs/r1/artifacts?expires_in={bad}"),
        ] {
            problem(
                app.get(&acme, &path).await,
                StatusCode::BAD_REQUEST,
                "invalid_expires_in",
            )
            .await;
        }
        let res = app
            .request(
                &acme,
                Method::POST,
                &format!("/runs/r1/cdn-cookies?expires_in={bad}"),
            )
            .send()
            .await
            .unwrap();
        problem(res, StatusCode::BAD_REQUEST, "invalid_expires_in").await;
    }
}

#[tokio::test]
async fn expires_in_sets_the_lifetime_of_cloudfront_grants_and_cookies() {
    let app =
        TestApp::spawn_with(|s| crate::cdn_signed::with_key(s, "ecdsa-p256.pem", "SHA256")).await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 900), json!({}))
        .await;
    let v: Value = app
        .get(&acme, &format!("/artifacts/{}?expires_in=120", id_of(&a)))
        .await
        .json()
        .await
        .unwrap();
    assert!(near(url_lifetime(v["url"].as_str().unwrap()), 120));

    let res = app
        .request(&acme, Method::POST, "/runs/r1/cdn-cookies?expires_in=300")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let max_age: Vec<i64> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| {
            c.to_str()
                .unwrap()
                .split("; ")
                .find_map(|p| p.strip_prefix("Max-Age="))
                .map(|n| n.parse().unwrap())
        })
        .collect();
    assert!(
        !max_age.is_empty() && max_age.iter().all(|m| near(*m, 300)),
        "{max_age:?}"
    );
    let body: Value = res.json().await.unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(near(expires - Utc::now().timestamp(), 300));
}
