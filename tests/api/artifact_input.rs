//! The bad-input matrix for artifact routes: each case gets its 4xx and stable code, and writes
//! no row, event or object; a refused upload leaves the artifact `pending` for a correct retry.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, sha256_hex, TestApp};

fn body(change: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({"run_id": "r1", "kind": "image", "filename": "a.png",
                       "content_type": "image/png", "size_bytes": 10});
    change(&mut v);
    v
}

#[tokio::test]
async fn create_refuses_bad_fields() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let set = |k: &'static str, v: Value| body(move |b| b[k] = v);
    let lineage = |l: Value| body(move |b| b["lineage"] = l);
    let unknown = uuid::Uuid::now_v7().to_string();
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "traversal",
            set("filename", json!("../x")),
            StatusCode::BAD_REQUEST,
            "invalid_filename",
        ),
        (
            "slash",
            set("filename", json!("a/b")),
            StatusCode::BAD_REQUEST,
            "invalid_filename",
        ),
        (
            "dotdot",
            set("filename", json!("..")),
            StatusCode::BAD_REQUEST,
            "invalid_filename",
        ),
        (
            "empty name",
            set("filename", json!("")),
            StatusCode::BAD_REQUEST,
            "invalid_filename",
        ),
        (
            "nul",
            set("filename", json!("a\u{0}b")),
            StatusCode::BAD_REQUEST,
            "invalid_filename",
        ),
        (
            "long name",
            set("filename", json!("x".repeat(256))),
            StatusCode::BAD_REQUEST,
            "invalid_filename",
        ),
        (
            "negative size",
            set("size_bytes", json!(-1)),
            StatusCode::BAD_REQUEST,
            "invalid_size",
        ),
        (
            "fractional size",
            set("size_bytes", json!(1.5)),
            StatusCode::BAD_REQUEST,
            "invalid_size",
        ),
        (
            "string size",
            set("size_bytes", json!("10")),
            StatusCode::BAD_REQUEST,
            "invalid_size",
        ),
        (
            "huge size",
            set("size_bytes", json!(1u64 << 40)),
            StatusCode::BAD_REQUEST,
            "size_too_large",
        ),
        (
            "bad sha",
            set("sha256", json!("abc")),
            StatusCode::BAD_REQUEST,
            "invalid_sha256",
        ),
        (
            "run traversal",
            set("run_id", json!("../r")),
            StatusCode::BAD_REQUEST,
            "invalid_run_id",
        ),
        (
            "empty run",
            set("run_id", json!("")),
            StatusCode::BAD_REQUEST,
            "invalid_run_id",
        ),
        (
            "run space",
            set("run_id", json!("a b")),
            StatusCode::BAD_REQUEST,
            "invalid_run_id",
        ),
        (
            "long run",
            set("run_id", json!("r".repeat(129))),
            StatusCode::BAD_REQUEST,
            "invalid_run_id",
        ),
        (
            "kind",
            set("kind", json!("gif")),
            StatusCode::BAD_REQUEST,
            "invalid_kind",
        ),
        (
            "visibility",
            set("visibility", json!("secret")),
            StatusCode::BAD_REQUEST,
            "invalid_visibility",
        ),
        (
            "content type",
            set("content_type", json!("png")),
            StatusCode::BAD_REQUEST,
            "invalid_content_type",
        ),
        (
            "image as video",
            set("content_type", json!("video/mp4")),
            StatusCode::BAD_REQUEST,
            "unsupported_content_type",
        ),
        (
            "method",
            set("method", json!("GET")),
            StatusCode::BAD_REQUEST,
            "invalid_method",
        ),
        (
            "past expiry",
            set("expires_at", json!("2001-01-01T00:00:00Z")),
            StatusCode::BAD_REQUEST,
            "invalid_expires_at",
        ),
        (
            "bad expiry",
            set("expires_at", json!("tomorrow")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "negative rev",
            lineage(json!({"rev": -1})),
            StatusCode::BAD_REQUEST,
            "invalid_lineage",
        ),
        (
            "bad ref",
            lineage(json!({"derived_from": ["not-a-uuid"]})),
            StatusCode::BAD_REQUEST,
            "invalid_lineage",
        ),
        (
            "control in id",
            lineage(json!({"canvas_id": "a\nb"})),
            StatusCode::BAD_REQUEST,
            "invalid_lineage",
        ),
        (
            "too many refs",
            lineage(json!({"derived_from": vec![unknown.clone(); 65]})),
            StatusCode::BAD_REQUEST,
            "invalid_lineage",
        ),
        (
            "unknown lineage field",
            lineage(json!({"foo": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown ref",
            lineage(json!({"derived_from": [unknown]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_lineage_ref",
        ),
        (
            "missing field",
            json!({"run_id": "r1"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (name, b, status, code) in cases {
        let before = app.footprint().await;
        let res = app.post(&acme, "/artifacts", &b).await;
        let p = problem(res, status, code).await;
        assert_eq!(app.footprint().await, before, "{name}: {p}");
    }

    // Malformed bodies and missing headers.
    let raw = |ct: &'static str, b: &'static str| {
        app.request(&acme, Method::POST, "/artifacts")
            .header("content-type", ct)
            .body(b)
    };
    let before = app.footprint().await;
    problem(
        raw("application/json", "{\"run_id\":")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    problem(
        raw("text/plain", "{}").send().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let mut no_tenant = acme.clone();
    no_tenant.tenant = None;
    problem(
        app.post(&no_tenant, "/artifacts", &body(|_| {})).await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    )
    .await;
    let mut no_token = acme.clone();
    no_token.token = None;
    problem(
        app.post(&no_token, "/artifacts", &body(|_| {})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn one_shot_creates_refuse_bad_documents() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let before = app.footprint().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/artifacts/replay",
            json!({"run_id": "r1", "keyframes": {"t": 0}}),
            "invalid_keyframes",
        ),
        (
            "/artifacts/replay",
            json!({"run_id": "r1", "keyframes": [], "summary": [1]}),
            "invalid_summary",
        ),
        (
            "/artifacts/replay",
            json!({"run_id": "r 1", "keyframes": []}),
            "invalid_run_id",
        ),
        (
            "/artifacts/audit",
            json!({"run_id": "r1", "filename": "a/b.json"}),
            "invalid_filename",
        ),
        (
            "/artifacts/preview",
            json!({"run_id": "r1", "uri": "ftp://x/y.png"}),
            "invalid_uri",
        ),
        (
            "/artifacts/preview",
            json!({"run_id": "r1", "uri": "javascript:alert(1)"}),
            "invalid_uri",
        ),
        (
            "/artifacts/preview",
            json!({"run_id": "r1", "uri": "https://a b"}),
            "invalid_uri",
        ),
    ];
    for (path, b, code) in cases {
        let p = problem(
            app.post(&acme, path, &b).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        assert_eq!(app.footprint().await, before, "{path} {p}");
    }
    let preview = |q: &'static str, ct: &'static str, bytes: Vec<u8>| {
        app.request(&acme, Method::POST, &format!("/artifacts/preview{q}"))
            .header("content-type", ct)
            .body(bytes)
    };
    let png = sample("image/png", 100);
    let cases = vec![
        ("", "image/png", png.clone(), "invalid_request"),
        (
            "?run_id=r1&filename=p.svg",
            "image/svg+xml",
            b"<svg/>".to_vec(),
            "unsupported_content_type",
        ),
        (
            "?run_id=r1&filename=p.png",
            "image/png",
            b"<svg/>".to_vec(),
            "content_mismatch",
        ),
        (
            "?run_id=r1&filename=..",
            "image/png",
            png.clone(),
            "invalid_filename",
        ),
    ];
    for (q, ct, bytes, code) in cases {
        let p = problem(
            preview(q, ct, bytes).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        assert_eq!(app.footprint().await, before, "{q} {p}");
    }
}

#[tokio::test]
async fn refused_content_leaves_the_artifact_pending() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let good = sample("image/png", 400);
    let res = app
        .create_artifact(
            &acme,
            "image/png",
            &good,
            json!({"sha256": sha256_hex(&good)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut wrong = good.clone();
    wrong[300] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("fewer bytes", good[..399].to_vec(), "size_mismatch"),
        (
            "more bytes",
            [good.as_slice(), b"x"].concat(),
            "size_mismatch",
        ),
        (
            "not a png",
            b"GIF89a".iter().copied().cycle().take(400).collect(),
            "content_mismatch",
        ),
        ("other content", wrong, "checksum_mismatch"),
    ];
    for (name, bytes, code) in cases {
        let before = app.footprint().await;
        let p = problem(
            app.put_content(&acme, &id, &bytes).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        assert_eq!(app.footprint().await, before, "{name}: {p}");
        let a: Value = app
            .get(&acme, &format!("/artifacts/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["status"], "pending", "{name}");
    }
    let res = app.put_content(&acme, &id, &good).await;
    assert_eq!(res.status(), StatusCode::OK);
    problem(
        app.put_content(&acme, &id, &good).await,
        StatusCode::CONFLICT,
        "not_pending",
    )
    .await;

    for q in ["?wait=61", "?wait=abc", "?wait=-1"] {
        problem(
            app.get(&acme, &format!("/artifacts/{id}{q}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_wait",
        )
        .await;
    }
    problem(
        app.get(&acme, "/artifacts/not-a-uuid").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        app.get(&acme, "/runs/..%2Fx/artifacts").await,
        StatusCode::BAD_REQUEST,
        "invalid_run_id",
    )
    .await;
    problem(
        app.put_json(
            &acme,
            &format!("/artifacts/{id}/legal-hold"),
            &json!({"hold": "yes"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    problem(
        app.request(&acme, Method::POST, &format!("/artifacts/{id}/complete"))
            .header("content-type", "application/json")
            .body("{\"parts\": [")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
}
