//! The isolation matrix over every artifact route: another tenant's or env's ids are 404 (the
//! same answer as for an id that never existed), a token without membership is 403, viewers and
//! members cannot write; refused calls write nothing.
use cairn::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, Caller, TestApp};

struct Fixture {
    available: String,
    pending: String,
    asset: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let acme = app.owner("acme", "dev");
    let available = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 64), json!({}))
        .await;
    let res = app
        .create_artifact(&acme, "image/png", &sample("image/png", 64), json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let pending: Value = res.json().await.unwrap();
    let asset = app.store(&acme, "src.bin", b"source").await;
    Fixture {
        available: available["artifact_id"].as_str().unwrap().to_owned(),
        pending: pending["artifact"]["artifact_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        asset: asset["asset_id"].as_str().unwrap().to_owned(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    Create,
    Replay,
    Audit,
    RenderRef,
    Get,
    Wait,
    GetContent,
    PutContent,
    Complete,
    LegalHold,
    Lineage,
    Manifest,
    Events,
    EventLog,
    Delete,
}

const ROUTES: [Route; 15] = [
    Route::Create,
    Route::Replay,
    Route::Audit,
    Route::RenderRef,
    Route::Get,
    Route::Wait,
    Route::GetContent,
    Route::PutContent,
    Route::Complete,
    Route::LegalHold,
    Route::Lineage,
    Route::Manifest,
    Route::Events,
    Route::EventLog,
    Route::Delete,
];

impl Route {
    fn writes(self) -> bool {
        !matches!(
            self,
            Route::Get
                | Route::Wait
                | Route::GetContent
                | Route::Lineage
                | Route::Manifest
                | Route::Events
                | Route::EventLog
        )
    }
    /// Routes that name an existing artifact by id.
    fn takes_id(self) -> bool {
        !matches!(
            self,
            Route::Create
                | Route::Replay
                | Route::Audit
                | Route::RenderRef
                | Route::Manifest
                | Route::EventLog
        )
    }
}

async fn call(app: &TestApp, who: &Caller, route: Route, f: &Fixture) -> reqwest::Response {
    let (a, p) = (&f.available, &f.pending);
    let png = sample("image/png", 64);
    match route {
        Route::Create => app.create_artifact(who, "image/png", &png, json!({})).await,
        Route::Replay => {
            app.post(
                who,
                "/artifacts/replay",
                &json!({"run_id": "r1", "keyframes": []}),
            )
            .await
        }
        Route::Audit => {
            app.post(who, "/artifacts/audit", &json!({"run_id": "r1"}))
                .await
        }
        Route::RenderRef => {
            app.post(
                who,
                "/artifacts/preview",
                &json!({"run_id": "r1", "uri": "https://render.example/x.png"}),
            )
            .await
        }
        Route::Get => app.get(who, &format!("/artifacts/{a}")).await,
        Route::Wait => app.get(who, &format!("/artifacts/{p}?wait=1")).await,
        Route::GetContent => app.get(who, &format!("/artifacts/{a}/content")).await,
        Route::PutContent => app.put_content(who, p, &png).await,
        Route::Complete => app
            .request(who, Method::POST, &format!("/artifacts/{p}/complete"))
            .send()
            .await
            .unwrap(),
        Route::LegalHold => {
            app.put_json(
                who,
                &format!("/artifacts/{a}/legal-hold"),
                &json!({"hold": true}),
            )
            .await
        }
        Route::Lineage => app.get(who, &format!("/artifacts/{a}/lineage")).await,
        Route::Manifest => app.get(who, "/runs/r1/artifacts").await,
        Route::Events => app.get(who, &format!("/artifacts/{a}/events")).await,
        Route::EventLog => app.get(who, "/events").await,
        Route::Delete => app
            .request(who, Method::DELETE, &format!("/artifacts/{a}"))
            .send()
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn artifact_isolation_matrix() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let ok = (StatusCode::OK, "");
    type Expect = fn(Route) -> (StatusCode, &'static str);
    let foreign: Expect = |r| {
        if r.takes_id() {
            (StatusCode::NOT_FOUND, "not_found")
        } else {
            (StatusCode::OK, "")
        }
    };
    let reader: Expect = |r| {
        if r.writes() {
            (StatusCode::FORBIDDEN, "forbidden")
        } else {
            (StatusCode::OK, "")
        }
    };
    let cases: Vec<(&str, Caller, Expect)> = vec![
        ("other tenant", app.owner("beta", "dev"), foreign),
        ("other env", app.owner("acme", "prod"), foreign),
        (
            "no membership",
            app.caller(&[("beta", Role::Owner)], "acme", "dev"),
            |_| (StatusCode::FORBIDDEN, "forbidden"),
        ),
        (
            "viewer",
            app.caller(&[("acme", Role::Viewer)], "acme", "dev"),
            reader,
        ),
        (
            "member",
            app.caller(&[("acme", Role::Member)], "acme", "dev"),
            reader,
        ),
    ];
    for (name, who, expect) in &cases {
        for route in ROUTES {
            let (status, code) = expect(route);
            let before = app.footprint().await;
            let res = call(&app, who, route, &f).await;
            if (status, code) == ok {
                let got = res.status();
                let body = res.text().await.unwrap();
                assert!(got.is_success(), "{name} {route:?}: {got} {body}");
                if route == Route::Manifest {
                    // Another tenant or env sees its own (empty) run, never acme's artifacts.
                    let v: Value = serde_json::from_str(&body).unwrap();
                    let ids: Vec<&str> = v["artifacts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a["artifact_id"].as_str().unwrap())
                        .collect();
                    let own = name.starts_with("viewer") || name.starts_with("member");
                    assert_eq!(ids.contains(&f.available.as_str()), own, "{name}: {body}");
                }
                if route == Route::EventLog {
                    // Every caller reads its own scope's log, never acme's in dev.
                    let v: Value = serde_json::from_str(&body).unwrap();
                    for e in v["events"].as_array().unwrap() {
                        assert_eq!(e["tenant_id"].as_str(), who.tenant.as_deref(), "{name}");
                        assert_eq!(e["env"].as_str(), who.env.as_deref(), "{name}");
                    }
                }
                continue;
            }
            let body = problem(res, status, code).await;
            assert_eq!(
                app.footprint().await,
                before,
                "{name} {route:?} wrote: {body}"
            );
        }
    }
    // Nothing anyone else did reached acme's artifacts.
    let acme = app.owner("acme", "dev");
    let a: Value = app
        .get(&acme, &format!("/artifacts/{}", f.available))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (a["status"].as_str(), a["legal_hold"].as_bool()),
        (Some("available"), Some(false))
    );
    let p: Value = app
        .get(&acme, &format!("/artifacts/{}", f.pending))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["status"], "pending");
}

#[tokio::test]
async fn foreign_ids_look_exactly_like_unknown_ones() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let beta = app.owner("beta", "dev");
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("trace_id");
        v
    };
    let unknown = uuid::Uuid::now_v7().to_string();
    for path in [
        "/artifacts/{}",
        "/artifacts/{}/lineage",
        "/artifacts/{}/content",
    ] {
        let foreign = problem(
            app.get(&beta, &path.replace("{}", &f.available)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        let never = problem(
            app.get(&beta, &path.replace("{}", &unknown)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        assert_eq!(strip(foreign), strip(never), "{path}");
    }
    // Lineage may only name items of the caller's own tenant and env.
    for id in [&f.asset, &f.available, &unknown] {
        for who in [&beta, &app.owner("acme", "prod")] {
            let before = app.footprint().await;
            let res = app
                .create_artifact(
                    who,
                    "image/png",
                    &sample("image/png", 64),
                    json!({"lineage": {"derived_from": [id]}}),
                )
                .await;
            problem(res, StatusCode::UNPROCESSABLE_ENTITY, "unknown_lineage_ref").await;
            assert_eq!(app.footprint().await, before);
        }
    }
}
