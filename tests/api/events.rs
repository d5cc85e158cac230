//! Reading the event log (issue 15 §11): `GET /events` newest first, filtered and paged;
//! `GET /artifacts/{id}/events` and `GET /storage/raw/{id}/events`, kept after a purge; bad
//! queries refused. Isolation is in the matrices (isolation.rs, artifact_isolation.rs).
use cairn::{
    auth::Role,
    jobs::{self, Trigger},
    lifecycle::SweepOptions,
};
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, Caller, TestApp};

async fn page(app: &TestApp, who: &Caller, path: &str) -> Value {
    let res = app.get(who, path).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn types(p: &Value) -> Vec<String> {
    p["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_log_reads_newest_first_filtered_and_paged() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let raw = app.store(&acme, "a.bin", b"raw bytes").await;
    let art = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 500), json!({}))
        .await;
    let raw_id = raw["asset_id"].as_str().unwrap();
    let art_id = art["artifact_id"].as_str().unwrap();
    // Another scope's events never show.
    let other = app.owner("acme", "prod");
    app.store(&other, "b.bin", b"prod bytes").await;

    let all = page(&app, &acme, "/events").await;
    let events = all["events"].as_array().unwrap();
    let in_catalog = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.tenant_id == "acme" && e.env == "dev")
        .count();
    assert_eq!(events.len(), in_catalog);
    assert!(events.len() >= 4, "{all}");
    assert_eq!(all["next_cursor"], Value::Null);
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    for e in events {
        assert_eq!(
            (e["tenant_id"].as_str(), e["env"].as_str()),
            (Some("acme"), Some("dev"))
        );
        assert_eq!(e["user_id"], "alice");
        assert!(e["trace_id"].as_str().is_some_and(|t| !t.is_empty()));
    }
    // The first event of all is the raw asset's presign.
    assert_eq!(events.last().unwrap()["type"], "raw.upload_presigned");

    // Pages of two walk the same events once each.
    let mut walked = Vec::new();
    let mut path = "/events?limit=2".to_owned();
    loop {
        let p = page(&app, &acme, &path).await;
        let n = p["events"].as_array().unwrap().len();
        assert!(n <= 2);
        walked.extend(
            p["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match p["next_cursor"].as_str() {
            Some(c) => path = format!("/events?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        walked,
        events.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()
    );

    // Filters: a family, one type, a subject, a time window.
    let arts = types(&page(&app, &acme, "/events?kind=artifact").await);
    assert!(
        !arts.is_empty() && arts.iter().all(|t| t.starts_with("artifact.")),
        "{arts:?}"
    );
    assert_eq!(
        types(&page(&app, &acme, "/events?kind=raw.registered").await),
        ["raw.registered"]
    );
    let of_raw = page(&app, &acme, &format!("/events?subject={raw_id}")).await;
    assert!(of_raw["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["subject_id"] == raw_id));
    assert_eq!(types(&of_raw), ["raw.registered", "raw.upload_presigned"]);
    let later = (Utc::now() + Duration::minutes(1))
        .to_rfc3339()
        .replace('+', "%2B");
    assert_eq!(
        page(&app, &acme, &format!("/events?from={later}")).await["events"],
        json!([])
    );
    let earlier = (Utc::now() - Duration::minutes(5))
        .to_rfc3339()
        .replace('+', "%2B");
    let window = page(
        &app,
        &acme,
        &format!("/events?from={earlier}&to={later}&subject={art_id}"),
    )
    .await;
    assert!(types(&window).contains(&"artifact.created".to_owned()));
}

#[tokio::test]
async fn an_items_history_outlives_it() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let art = app
        .stream_artifact(
            &acme,
            "image/png",
            &sample("image/png", 600),
            json!({"lineage": {"canvas_id": "c7"}}),
        )
        .await;
    let id = art["artifact_id"].as_str().unwrap();
    let raw = app.store(&acme, "r.bin", b"raw history").await;
    let raw_id = raw["asset_id"].as_str().unwrap();

    let h = page(&app, &acme, &format!("/artifacts/{id}/events")).await;
    let t = types(&h);
    assert_eq!(
        t.last().map(String::as_str),
        Some("artifact.created"),
        "{t:?}"
    );
    assert!(t.contains(&"artifact.available".to_owned()), "{t:?}");
    assert_eq!(h["events"][0]["lineage"]["canvas_id"], "c7");
    for prefix in ["/storage/raw", "/nexus/raw"] {
        let h = page(&app, &acme, &format!("{prefix}/{raw_id}/events")).await;
        assert_eq!(types(&h), ["raw.registered", "raw.upload_presigned"]);
    }
    // An id of the other family, or of nothing, is not found.
    for path in [
        format!("/artifacts/{raw_id}/events"),
        format!("/storage/raw/{id}/events"),
        format!("/artifacts/{}/events", uuid::Uuid::now_v7()),
        "/artifacts/not-an-id/events".to_owned(),
    ] {
        problem(
            app.get(&acme, &path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }

    // Deleted and purged: the item is gone, its history stays.
    let res = app
        .request(&acme, Method::DELETE, &format!("/artifacts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let opts = SweepOptions::default();
    jobs::lifecycle::run(
        &app.state.lifecycle,
        Trigger::Api,
        &opts,
        Utc::now() + Duration::days(8),
    )
    .await
    .unwrap();
    problem(
        app.get(&acme, &format!("/artifacts/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let t = types(&page(&app, &acme, &format!("/artifacts/{id}/events")).await);
    assert_eq!(
        t.iter().take(2).map(String::as_str).collect::<Vec<_>>(),
        ["artifact.purged", "artifact.deleted"],
        "{t:?}"
    );
    // Viewers read it too.
    let viewer = app.caller(&[("acme", Role::Viewer)], "acme", "dev");
    assert!(!types(&page(&app, &viewer, &format!("/artifacts/{id}/events")).await).is_empty());
}

#[tokio::test]
async fn bad_event_queries_are_refused() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let art = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 300), json!({}))
        .await;
    let id = art["artifact_id"].as_str().unwrap();
    let cases = [
        ("limit=0", "invalid_query"),
        ("limit=1001", "invalid_query"),
        ("limit=ten", "invalid_query"),
        ("kind=Artifact", "invalid_query"),
        ("kind=artifact.created.x", "invalid_query"),
        ("kind=%25", "invalid_query"),
        ("from=yesterday", "invalid_query"),
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "invalid_query",
        ),
        ("subject=nope", "invalid_query"),
        ("limit=1&limit=2", "invalid_query"),
        ("page=2", "invalid_query"),
        ("cursor=nope", "invalid_cursor"),
    ];
    for (query, code) in cases {
        problem(
            app.get(&acme, &format!("/events?{query}")).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        // An item's history takes the same parameters, but not `subject`.
        if !query.starts_with("subject") {
            problem(
                app.get(&acme, &format!("/artifacts/{id}/events?{query}"))
                    .await,
                StatusCode::BAD_REQUEST,
                code,
            )
            .await;
        }
    }
    problem(
        app.get(&acme, &format!("/artifacts/{id}/events?subject={id}"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}
