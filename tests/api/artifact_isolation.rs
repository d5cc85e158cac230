//! The isolation matrix over every artifact route: another tenant's or env's artifact ids are 404
//! (the same answer as for an id that never existed), creates land in the caller's own scope, a
//! token without membership is 403, viewers and members read but cannot write; refused calls write
//! nothing and leave acme's artifacts exactly as they were. (One file: the cases of the former
//! `artifact_scope.rs` are folded in here.)
use cairn::auth::Role;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, Caller, TestApp};

/// The run the fixture's artifacts belong to.
const RUN: &str = "r1";
/// The run the matrix's creates use, so that `GET /runs/r1/artifacts` shows only the fixture.
const OTHER_RUN: &str = "iso-creates";

struct Fixture {
    available: String,
    pending: String,
    asset: String,
    /// The bytes of the available artifact (and of the pending one's intended upload).
    bytes: Vec<u8>,
}

async fn fixture(app: &TestApp) -> Fixture {
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/png", 64);
    let available = app
        .stream_artifact(&acme, "image/png", &bytes, json!({}))
        .await;
    let res = app
        .create_artifact(&acme, "image/png", &bytes, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let pending: Value = res.json().await.unwrap();
    assert_eq!(pending["artifact"]["status"], "pending");
    let asset = app.store(&acme, "src.bin", b"lineage source").await;
    Fixture {
        available: available["artifact_id"].as_str().unwrap().to_owned(),
        pending: pending["artifact"]["artifact_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        asset: asset["asset_id"].as_str().unwrap().to_owned(),
        bytes,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    Get,
    Wait,
    GetContent,
    Lineage,
    Manifest,
    Events,
    EventLog,
    Create,
    Replay,
    Audit,
    RenderRef,
    PutContent,
    Complete,
    /// Waits on the pending artifact.
    WaitPending,
    /// `POST /artifacts` into the fixture's run [`RUN`].
    CreateInRun,
    /// A replay with no keyframes and no summary, into [`RUN`].
    ReplayWithoutKeyframes,
    /// The manifest of [`RUN`] once the caller may have created items in it (its own scope's).
    ManifestWithOwnItems,
    // The destructive ones last (and acme's state is re-checked after every call anyway).
    LegalHold,
    Delete,
}

const ROUTES: [Route; 19] = [
    Route::Get,
    Route::Wait,
    Route::GetContent,
    Route::Lineage,
    Route::Manifest,
    Route::Events,
    Route::EventLog,
    Route::Create,
    Route::Replay,
    Route::Audit,
    Route::RenderRef,
    Route::PutContent,
    Route::Complete,
    Route::WaitPending,
    Route::CreateInRun,
    Route::ReplayWithoutKeyframes,
    Route::ManifestWithOwnItems,
    Route::LegalHold,
    Route::Delete,
];

impl Route {
    fn writes(self) -> bool {
        !matches!(
            self,
            Route::Get
                | Route::Wait
                | Route::WaitPending
                | Route::GetContent
                | Route::Lineage
                | Route::Manifest
                | Route::ManifestWithOwnItems
                | Route::Events
                | Route::EventLog
        )
    }

    fn creates(self) -> bool {
        matches!(
            self,
            Route::Create
                | Route::Replay
                | Route::Audit
                | Route::RenderRef
                | Route::CreateInRun
                | Route::ReplayWithoutKeyframes
        )
    }

    fn takes_id(self) -> bool {
        !self.creates()
            && !matches!(
                self,
                Route::Manifest | Route::ManifestWithOwnItems | Route::EventLog
            )
    }

    /// The run a create puts its artifact in.
    fn run(self) -> &'static str {
        match self {
            Route::CreateInRun | Route::ReplayWithoutKeyframes => RUN,
            _ => OTHER_RUN,
        }
    }
}

/// Calls `route` as `who`; `id` is the artifact the route acts on (ignored by creates and the
/// manifest), `lineage` goes into the body of the creates.
async fn call_on(app: &TestApp, who: &Caller, route: Route, id: &str, lineage: Value) -> Response {
    match route {
        Route::Get => app.get(who, &format!("/artifacts/{id}")).await,
        Route::Wait | Route::WaitPending => app.get(who, &format!("/artifacts/{id}?wait=1")).await,
        Route::GetContent => app.get(who, &format!("/artifacts/{id}/content")).await,
        Route::Lineage => app.get(who, &format!("/artifacts/{id}/lineage")).await,
        Route::Manifest | Route::ManifestWithOwnItems => {
            app.get(who, &format!("/runs/{RUN}/artifacts")).await
        }
        Route::Events => app.get(who, &format!("/artifacts/{id}/events")).await,
        Route::EventLog => app.get(who, "/events").await,
        Route::Create => {
            app.post(
                who,
                "/artifacts",
                &json!({"run_id": OTHER_RUN, "kind": "image", "filename": "c.png",
                        "content_type": "image/png", "size_bytes": 64, "lineage": lineage}),
            )
            .await
        }
        Route::Replay => {
            app.post(
                who,
                "/artifacts/replay",
                &json!({"run_id": OTHER_RUN, "keyframes": [{"t": 0}], "summary": {"frames": 1},
                        "lineage": lineage}),
            )
            .await
        }
        Route::Audit => {
            app.post(
                who,
                "/artifacts/audit",
                &json!({"run_id": OTHER_RUN, "lineage": lineage}),
            )
            .await
        }
        Route::RenderRef => {
            app.post(
                who,
                "/artifacts/preview",
                &json!({"run_id": OTHER_RUN, "uri": "https://render.example/x.png",
                        "lineage": lineage}),
            )
            .await
        }
        Route::CreateInRun => {
            let mut extra = json!({});
            if lineage != json!({}) {
                extra["lineage"] = lineage;
            }
            app.create_artifact(who, "image/png", &sample("image/png", 64), extra)
                .await
        }
        Route::ReplayWithoutKeyframes => {
            app.post(
                who,
                "/artifacts/replay",
                &json!({"run_id": RUN, "keyframes": []}),
            )
            .await
        }
        Route::PutContent => {
            // The right bytes: if isolation failed, this upload would succeed.
            app.put_content(who, id, &sample("image/png", 64)).await
        }
        Route::Complete => app
            .request(who, Method::POST, &format!("/artifacts/{id}/complete"))
            .send()
            .await
            .unwrap(),
        Route::LegalHold => {
            app.put_json(
                who,
                &format!("/artifacts/{id}/legal-hold"),
                &json!({"hold": true}),
            )
            .await
        }
        Route::Delete => app
            .request(who, Method::DELETE, &format!("/artifacts/{id}"))
            .send()
            .await
            .unwrap(),
    }
}

/// The fixture artifact each id route acts on: uploads and completes need the pending one.
fn target(route: Route, f: &Fixture) -> &str {
    match route {
        Route::PutContent | Route::Complete | Route::WaitPending => &f.pending,
        _ => &f.available,
    }
}

async fn call(app: &TestApp, who: &Caller, route: Route, f: &Fixture) -> Response {
    call_on(app, who, route, target(route, f), json!({})).await
}

/// acme's view of an artifact, without the (freshly signed) delivery URL.
async fn snapshot(app: &TestApp, id: &str) -> Value {
    let acme = app.owner("acme", "dev");
    let res = app.get(&acme, &format!("/artifacts/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK, "acme lost artifact {id}");
    let mut v: Value = res.json().await.unwrap();
    v.as_object_mut().unwrap().remove("url");
    v
}

/// Checks what a successful call answered.
async fn check_success(res: Response, who: &Caller, route: Route, f: &Fixture, ctx: &str) {
    let status = res.status();
    if route.creates() {
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{ctx}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        // The create landed in the caller's own scope, never in acme/dev.
        assert_eq!(
            v["artifact"]["tenant_id"].as_str(),
            who.tenant.as_deref(),
            "{ctx}"
        );
        assert_eq!(v["artifact"]["env"].as_str(), who.env.as_deref(), "{ctx}");
        assert_eq!(v["artifact"]["run_id"], route.run(), "{ctx}");
        return;
    }
    match route {
        Route::GetContent => {
            assert_eq!(status, StatusCode::OK, "{ctx}");
            assert_eq!(
                res.bytes().await.unwrap().as_ref(),
                f.bytes.as_slice(),
                "{ctx}"
            );
        }
        Route::Get | Route::Wait => {
            assert_eq!(status, StatusCode::OK, "{ctx}");
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["artifact_id"], f.available.as_str(), "{ctx}");
            assert_eq!(v["status"], "available", "{ctx}");
        }
        Route::WaitPending => {
            assert_eq!(status, StatusCode::OK, "{ctx}");
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["artifact_id"], f.pending.as_str(), "{ctx}");
            assert_eq!(v["status"], "pending", "{ctx}");
        }
        Route::ManifestWithOwnItems
            if who.tenant.as_deref() != Some("acme") || who.env.as_deref() != Some("dev") =>
        {
            // Another tenant or env sees its own run (with what it created), never acme's.
            assert_eq!(status, StatusCode::OK, "{ctx}");
            let v: Value = res.json().await.unwrap();
            for a in v["artifacts"].as_array().unwrap() {
                assert_ne!(a["artifact_id"], f.available.as_str(), "{ctx}: {v}");
                assert_ne!(a["artifact_id"], f.pending.as_str(), "{ctx}: {v}");
                assert_eq!(a["tenant_id"].as_str(), who.tenant.as_deref(), "{ctx}");
                assert_eq!(a["env"].as_str(), who.env.as_deref(), "{ctx}");
            }
        }
        Route::Lineage => {
            assert_eq!(status, StatusCode::OK, "{ctx}");
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["artifact"]["artifact_id"], f.available.as_str(), "{ctx}");
        }
        Route::Events => {
            assert_eq!(status, StatusCode::OK, "{ctx}");
            let v: Value = res.json().await.unwrap();
            let events = v["events"].as_array().unwrap();
            assert!(!events.is_empty(), "{ctx}");
            assert!(
                events
                    .iter()
                    .all(|e| e["subject_id"] == f.available.as_str()),
                "{ctx}"
            );
        }
        Route::EventLog => {
            // Whoever reads the log sees their own scope's events, never another's.
            assert_eq!(status, StatusCode::OK, "{ctx}");
            let v: Value = res.json().await.unwrap();
            let events = v["events"].as_array().unwrap();
            for e in events {
                assert_eq!(e["tenant_id"].as_str(), who.tenant.as_deref(), "{ctx}");
                assert_eq!(e["env"].as_str(), who.env.as_deref(), "{ctx}");
            }
            if who.tenant.as_deref() == Some("acme") && who.env.as_deref() == Some("dev") {
                assert!(
                    events
                        .iter()
                        .any(|e| e["subject_id"] == f.available.as_str()),
                    "{ctx}: acme's own events missing"
                );
            }
        }
        Route::Manifest | Route::ManifestWithOwnItems => {
            assert_eq!(status, StatusCode::OK, "{ctx}");
            let v: Value = res.json().await.unwrap();
            let arts = v["artifacts"].as_array().unwrap();
            for id in [&f.available, &f.pending] {
                assert!(
                    arts.iter().any(|a| a["artifact_id"] == id.as_str()),
                    "{ctx}: {id} missing from {v}"
                );
            }
            for a in arts {
                assert_eq!(a["tenant_id"], "acme", "{ctx}");
                assert_eq!(a["env"], "dev", "{ctx}");
            }
        }
        other => panic!("{ctx}: {other:?} is never expected to succeed here ({status})"),
    }
}

/// What a caller gets from a route.
#[derive(Clone, Copy)]
enum Expect {
    Success,
    /// 200 with an empty `artifacts` array.
    EmptyManifest,
    Refused(StatusCode, &'static str),
}

/// What each route gives a caller.
type Rule = fn(Route) -> Expect;

fn foreign(r: Route) -> Expect {
    if r == Route::Manifest {
        Expect::EmptyManifest
    } else if r.takes_id() {
        Expect::Refused(StatusCode::NOT_FOUND, "not_found")
    } else {
        Expect::Success
    }
}

fn reader(r: Route) -> Expect {
    if r.writes() {
        Expect::Refused(StatusCode::FORBIDDEN, "forbidden")
    } else {
        Expect::Success
    }
}

#[tokio::test]
async fn artifact_isolation_matrix() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let available_before = snapshot(&app, &f.available).await;
    let pending_before = snapshot(&app, &f.pending).await;
    assert_eq!(available_before["status"], "available");
    assert_eq!(available_before["legal_hold"], false);
    assert_eq!(pending_before["status"], "pending");

    let cases: Vec<(&str, Caller, Rule)> = vec![
        (
            "other tenant",
            app.caller(&[("beta", Role::Owner)], "beta", "dev"),
            foreign,
        ),
        ("other env", app.owner("acme", "prod"), foreign),
        (
            "no membership",
            app.caller(&[("beta", Role::Owner)], "acme", "dev"),
            |_| Expect::Refused(StatusCode::FORBIDDEN, "forbidden"),
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
            let ctx = format!("{name} {route:?}");
            eprintln!("case: {ctx}");
            let before = app.footprint().await;
            let res = call(&app, who, route, &f).await;
            match expect(route) {
                Expect::Success => check_success(res, who, route, &f, &ctx).await,
                Expect::EmptyManifest => {
                    let status = res.status();
                    let text = res.text().await.unwrap();
                    assert_eq!(status, StatusCode::OK, "{ctx}: {text}");
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["run_id"], RUN, "{ctx}");
                    assert_eq!(v["artifacts"], json!([]), "{ctx}: acme's artifacts leaked");
                    assert_eq!(app.footprint().await, before, "{ctx} wrote something");
                }
                Expect::Refused(status, code) => {
                    let body = problem(res, status, code).await;
                    assert_eq!(app.footprint().await, before, "{ctx} wrote: {body}");
                }
            }
            // Whatever happened, acme's artifacts are untouched: order does not matter.
            assert_eq!(
                snapshot(&app, &f.available).await,
                available_before,
                "{ctx} changed the available artifact"
            );
            assert_eq!(
                snapshot(&app, &f.pending).await,
                pending_before,
                "{ctx} changed the pending artifact"
            );
        }
    }

    // The end state, once more, as acme's owner sees it.
    let available = snapshot(&app, &f.available).await;
    assert_eq!(available["status"], "available");
    assert_eq!(available["legal_hold"], false);
    assert_eq!(available, available_before);
    let pending = snapshot(&app, &f.pending).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending, pending_before);
    let acme = app.owner("acme", "dev");
    let v: Value = app
        .get(&acme, &format!("/runs/{RUN}/artifacts"))
        .await
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["artifact_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![f.available.as_str(), f.pending.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "acme's run r1 gained or lost artifacts");
}

fn strip_trace(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("trace_id");
    v
}

#[tokio::test]
async fn artifact_isolation_a_foreign_id_is_an_unknown_id() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for (name, who) in [
        ("other tenant", app.owner("beta", "dev")),
        ("other env", app.owner("acme", "prod")),
    ] {
        for route in ROUTES.into_iter().filter(|r| r.takes_id()) {
            let ctx = format!("{name} {route:?}");
            eprintln!("case: {ctx}");
            let before = app.footprint().await;
            let foreign = problem(
                call_on(&app, &who, route, target(route, &f), json!({})).await,
                StatusCode::NOT_FOUND,
                "not_found",
            )
            .await;
            let missing = problem(
                call_on(&app, &who, route, &unknown, json!({})).await,
                StatusCode::NOT_FOUND,
                "not_found",
            )
            .await;
            assert_eq!(
                strip_trace(foreign),
                strip_trace(missing),
                "{ctx}: a foreign id answers differently from an unknown one"
            );
            assert_eq!(app.footprint().await, before, "{ctx} wrote something");
        }
    }
    // Nothing moved.
    assert_eq!(snapshot(&app, &f.pending).await["status"], "pending");
    let available = snapshot(&app, &f.available).await;
    assert_eq!(available["status"], "available");
    assert_eq!(available["legal_hold"], false);
}

#[tokio::test]
async fn artifact_isolation_lineage_refs_stay_in_their_tenant_and_env() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let creates = [Route::Create, Route::Replay, Route::Audit, Route::RenderRef];
    for (name, who) in [
        ("other tenant", app.owner("beta", "dev")),
        ("other env", app.owner("acme", "prod")),
    ] {
        for route in creates {
            // The same answer, id aside, for acme's asset, acme's artifact and an id never seen.
            let mut answers = vec![];
            for (what, id) in [
                ("raw asset", &f.asset),
                ("artifact", &f.available),
                ("random uuid", &unknown),
            ] {
                let ctx = format!("{name} {route:?} derived_from {what}");
                eprintln!("case: {ctx}");
                let before = app.footprint().await;
                let res = call_on(&app, &who, route, "", json!({ "derived_from": [id] })).await;
                let body =
                    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "unknown_lineage_ref").await;
                assert_eq!(app.footprint().await, before, "{ctx} wrote: {body}");
                let text = strip_trace(body).to_string().replace(id.as_str(), "<id>");
                answers.push((ctx, text));
            }
            for (ctx, text) in &answers[..2] {
                assert_eq!(
                    text, &answers[2].1,
                    "{ctx}: a foreign ref answers differently from an unknown one"
                );
            }
        }
    }
    // The same refs are fine where they live: the 422s above were about scope, not the ids.
    let acme = app.owner("acme", "dev");
    for route in creates {
        let res = call_on(
            &app,
            &acme,
            route,
            "",
            json!({ "derived_from": [&f.asset, &f.available] }),
        )
        .await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "acme {route:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let refs = &v["artifact"]["lineage"]["derived_from"];
        for id in [&f.asset, &f.available] {
            assert!(
                refs.as_array().unwrap().iter().any(|r| r == id.as_str()),
                "acme {route:?}: {id} missing from {refs}"
            );
        }
    }
}
