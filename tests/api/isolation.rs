//! The isolation matrix: for every route, another tenant's or env's ids are 404, a token without
//! membership is 403, viewers and members cannot write; refused calls write nothing.
use cairn::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, sha256_hex, Caller, TestApp};

const PENDING_BYTES: &[u8] = b"pending upload";

struct Fixture {
    registered: String,
    pending: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let acme = app.owner("acme", "dev");
    let registered = app.store(&acme, "r.bin", b"registered").await;
    let pending = app
        .presign(&acme, "p.bin", "application/octet-stream", PENDING_BYTES)
        .await;
    assert_eq!(
        app.put_upload(&pending, PENDING_BYTES).await.status(),
        StatusCode::OK
    );
    Fixture {
        registered: registered["asset_id"].as_str().unwrap().to_owned(),
        pending: pending["asset_id"].as_str().unwrap().to_owned(),
    }
}

#[derive(Clone, Copy, Debug)]
enum Route {
    PresignUpload,
    Register,
    Get,
    PresignDownload,
    Events,
}

const ROUTES: [Route; 5] = [
    Route::PresignUpload,
    Route::Register,
    Route::Get,
    Route::PresignDownload,
    Route::Events,
];

impl Route {
    fn writes(self) -> bool {
        matches!(self, Route::PresignUpload | Route::Register)
    }
    fn takes_id(self) -> bool {
        !matches!(self, Route::PresignUpload)
    }
}

async fn call(
    app: &TestApp,
    who: &Caller,
    prefix: &str,
    route: Route,
    f: &Fixture,
) -> reqwest::Response {
    match route {
        Route::PresignUpload => {
            app.post(
                who,
                &format!("{prefix}/presign-upload"),
                &json!({"filename": "x.bin", "content_type": "text/plain", "size_bytes": 3}),
            )
            .await
        }
        Route::Register => {
            app.post(
                who,
                &format!("{prefix}/register"),
                &json!({"asset_id": f.pending, "sha256": sha256_hex(PENDING_BYTES),
                        "size_bytes": PENDING_BYTES.len(), "content_type": "application/octet-stream"}),
            )
            .await
        }
        Route::Get => app.get(who, &format!("{prefix}/{}", f.registered)).await,
        Route::Events => {
            app.get(who, &format!("{prefix}/{}/events", f.registered))
                .await
        }
        Route::PresignDownload => {
            app.post(who, &format!("{prefix}/presign-download"), &json!({"asset_id": f.registered}))
                .await
        }
    }
}

#[tokio::test]
async fn isolation_matrix() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    // What each caller should get from each route; OK means any success.
    type Expect = fn(Route) -> (StatusCode, &'static str);
    let cases: Vec<(&str, Caller, Expect)> = vec![
        (
            "other tenant",
            app.caller(&[("beta", Role::Owner)], "beta", "dev"),
            |r| {
                if r.takes_id() {
                    (StatusCode::NOT_FOUND, "not_found")
                } else {
                    (StatusCode::OK, "")
                }
            },
        ),
        ("other env", app.owner("acme", "prod"), |r| {
            if r.takes_id() {
                (StatusCode::NOT_FOUND, "not_found")
            } else {
                (StatusCode::OK, "")
            }
        }),
        (
            "no membership",
            app.caller(&[("beta", Role::Owner)], "acme", "dev"),
            |_| (StatusCode::FORBIDDEN, "forbidden"),
        ),
        (
            "viewer",
            app.caller(&[("acme", Role::Viewer)], "acme", "dev"),
            |r| {
                if r.writes() {
                    (StatusCode::FORBIDDEN, "forbidden")
                } else {
                    (StatusCode::OK, "")
                }
            },
        ),
        (
            "member",
            app.caller(&[("acme", Role::Member)], "acme", "dev"),
            |r| {
                if r.writes() {
                    (StatusCode::FORBIDDEN, "forbidden")
                } else {
                    (StatusCode::OK, "")
                }
            },
        ),
    ];
    for prefix in ["/storage/raw", "/nexus/raw"] {
        for (name, who, expect) in &cases {
            for route in ROUTES {
                let (status, code) = expect(route);
                let before = app.footprint().await;
                let res = call(&app, who, prefix, route, &f).await;
                if status == StatusCode::OK {
                    assert!(
                        res.status().is_success(),
                        "{prefix} {name} {route:?}: {}",
                        res.status()
                    );
                    continue;
                }
                let body = problem(res, status, code).await;
                assert_eq!(
                    app.footprint().await,
                    before,
                    "{prefix} {name} {route:?} wrote: {body}"
                );
            }
        }
    }
    // The pending asset was never registered by anyone else.
    let acme = app.owner("acme", "dev");
    let v: Value = app
        .get(&acme, &format!("/storage/raw/{}", f.pending))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "pending");
}

#[tokio::test]
async fn admins_write_and_a_404_looks_the_same_for_unknown_and_foreign_ids() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let admin = app.caller(&[("acme", Role::Admin)], "acme", "dev");
    let res = app
        .register(
            &admin,
            &f.pending,
            PENDING_BYTES,
            "application/octet-stream",
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let beta = app.owner("beta", "dev");
    let foreign = problem(
        app.get(&beta, &format!("/storage/raw/{}", f.registered))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let unknown = problem(
        app.get(&beta, &format!("/storage/raw/{}", uuid::Uuid::now_v7()))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("trace_id");
        v
    };
    assert_eq!(strip(foreign), strip(unknown));
}
