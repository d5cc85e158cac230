//! The bad-input matrix for artifact routes: each case gets its 4xx and stable code and writes no
//! row, event or object; a refused upload leaves the artifact `pending` for a correct retry.
//! (One file: the cases of the former `artifact_input.rs` are folded in here.)
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, sha256_hex, Caller, TestApp};

/// The test app's `CAIRN_MAX_UPLOAD_BYTES`.
const MAX_UPLOAD: u64 = 1_048_576;

fn create_body(change: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({"run_id": "r1", "kind": "image", "filename": "a.png",
                       "content_type": "image/png", "size_bytes": 10});
    change(&mut v);
    v
}

/// Sends `req`, asserts the problem `status`/`code` and that nothing was written.
async fn refused(app: &TestApp, name: &str, req: RequestBuilder, status: StatusCode, code: &str) {
    eprintln!("case: {name}");
    let before = app.footprint().await;
    let body = problem(req.send().await.unwrap(), status, code).await;
    assert_eq!(
        app.footprint().await,
        before,
        "{name} wrote something: {body}"
    );
}

#[tokio::test]
async fn artifact_create_refuses_bad_fields() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let set = |k: &'static str, v: Value| create_body(move |b| b[k] = v);
    let lineage = |l: Value| create_body(move |b| b["lineage"] = l);
    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "traversal",
            set("filename", json!("../x")),
            bad,
            "invalid_filename",
        ),
        (
            "slash",
            set("filename", json!("a/b")),
            bad,
            "invalid_filename",
        ),
        (
            "dotdot",
            set("filename", json!("..")),
            bad,
            "invalid_filename",
        ),
        ("empty", set("filename", json!("")), bad, "invalid_filename"),
        (
            "nul",
            set("filename", json!("a\u{0}b.png")),
            bad,
            "invalid_filename",
        ),
        (
            "nul, no extension",
            set("filename", json!("a\u{0}b")),
            bad,
            "invalid_filename",
        ),
        (
            "256 bytes",
            set("filename", json!("x".repeat(256))),
            bad,
            "invalid_filename",
        ),
        (
            "negative size",
            set("size_bytes", json!(-1)),
            bad,
            "invalid_size",
        ),
        (
            "fractional size",
            set("size_bytes", json!(1.5)),
            bad,
            "invalid_size",
        ),
        (
            "string size",
            set("size_bytes", json!("10")),
            bad,
            "invalid_size",
        ),
        (
            "size above the max",
            set("size_bytes", json!(MAX_UPLOAD + 1)),
            bad,
            "size_too_large",
        ),
        (
            "size of a terabyte",
            set("size_bytes", json!(1u64 << 40)),
            bad,
            "size_too_large",
        ),
        (
            "short sha",
            set("sha256", json!("abc")),
            bad,
            "invalid_sha256",
        ),
        (
            "traversal run",
            set("run_id", json!("../r")),
            bad,
            "invalid_run_id",
        ),
        ("empty run", set("run_id", json!("")), bad, "invalid_run_id"),
        (
            "spaced run",
            set("run_id", json!("a b")),
            bad,
            "invalid_run_id",
        ),
        (
            "129-char run",
            set("run_id", json!("r".repeat(129))),
            bad,
            "invalid_run_id",
        ),
        (
            "unknown kind",
            set("kind", json!("gif")),
            bad,
            "invalid_kind",
        ),
        (
            "unknown visibility",
            set("visibility", json!("secret")),
            bad,
            "invalid_visibility",
        ),
        (
            "bad content type",
            set("content_type", json!("png")),
            bad,
            "invalid_content_type",
        ),
        (
            "image as video",
            set("content_type", json!("video/mp4")),
            bad,
            "unsupported_content_type",
        ),
        (
            "replay as png",
            create_body(|b| {
                b["kind"] = json!("replay");
                b["filename"] = json!("r.png");
            }),
            bad,
            "unsupported_content_type",
        ),
        (
            "bundle as png",
            create_body(|b| b["kind"] = json!("bundle")),
            bad,
            "unsupported_content_type",
        ),
        (
            "audio as webm",
            create_body(|b| {
                b["kind"] = json!("audio");
                b["content_type"] = json!("video/webm");
                b["filename"] = json!("a.webm");
            }),
            bad,
            "unsupported_content_type",
        ),
        (
            "bad method",
            set("method", json!("GET")),
            bad,
            "invalid_method",
        ),
        (
            "negative rev",
            lineage(json!({"rev": -1})),
            bad,
            "invalid_lineage",
        ),
        (
            "derived_from not ids",
            lineage(json!({"derived_from": ["not-a-uuid"]})),
            bad,
            "invalid_lineage",
        ),
        (
            "control character in a lineage id",
            lineage(json!({"canvas_id": "a\nb"})),
            bad,
            "invalid_lineage",
        ),
        (
            "65 lineage refs",
            lineage(json!({"derived_from": vec![uuid::Uuid::now_v7().to_string(); 65]})),
            bad,
            "invalid_lineage",
        ),
        (
            "unknown lineage field",
            lineage(json!({"foo": 1})),
            bad,
            "invalid_request",
        ),
        (
            "unknown lineage ref",
            lineage(json!({"derived_from": [uuid::Uuid::now_v7()]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_lineage_ref",
        ),
        (
            "expired",
            set(
                "expires_at",
                json!((chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()),
            ),
            bad,
            "invalid_expires_at",
        ),
        (
            "expiry in 2001",
            set("expires_at", json!("2001-01-01T00:00:00Z")),
            bad,
            "invalid_expires_at",
        ),
        (
            "expiry not a time",
            set("expires_at", json!("tomorrow")),
            bad,
            "invalid_request",
        ),
        (
            "only a run_id",
            json!({"run_id": "r1"}),
            bad,
            "invalid_request",
        ),
        (
            "missing kind",
            create_body(|b| {
                b.as_object_mut().unwrap().remove("kind");
            }),
            bad,
            "invalid_request",
        ),
    ];
    for (name, body, status, code) in cases {
        let req = app.request(&acme, Method::POST, "/artifacts").json(&body);
        refused(&app, name, req, status, code).await;
    }
    // The base body itself is fine: every refusal above is about the one field changed.
    let res = app.post(&acme, "/artifacts", &create_body(|_| {})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn artifact_create_refuses_bad_bodies_scopes_and_tokens() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let raw = |who: &Caller, body: &str, ct: Option<&str>| {
        let mut r = app
            .request(who, Method::POST, "/artifacts")
            .body(body.to_owned());
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r
    };
    let good = create_body(|_| {}).to_string();
    let good = good.as_str();
    refused(
        &app,
        "malformed json",
        raw(&acme, "{\"run_id\":", Some("application/json")),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    refused(
        &app,
        "text/plain",
        raw(&acme, good, Some("text/plain")),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    refused(
        &app,
        "text/plain, an empty object",
        raw(&acme, "{}", Some("text/plain")),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    refused(
        &app,
        "no content type",
        raw(&acme, good, None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let no_tenant = Caller {
        tenant: None,
        ..acme.clone()
    };
    refused(
        &app,
        "missing X-Tenant-Id",
        raw(&no_tenant, good, Some("application/json")),
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    )
    .await;
    let no_token = Caller {
        token: None,
        ..acme.clone()
    };
    refused(
        &app,
        "no token",
        raw(&no_token, good, Some("application/json")),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // The same body with a token and the scope headers is accepted.
    let ok = raw(&acme, good, Some("application/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn artifact_replay_and_preview_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let bad = StatusCode::BAD_REQUEST;
    let json_cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "keyframes not an array",
            "/artifacts/replay",
            json!({"run_id": "r1", "keyframes": {"t": 0}, "summary": {}}),
            "invalid_keyframes",
        ),
        (
            "keyframes a string",
            "/artifacts/replay",
            json!({"run_id": "r1", "keyframes": "[]", "summary": {}}),
            "invalid_keyframes",
        ),
        (
            "keyframes not an array, no summary",
            "/artifacts/replay",
            json!({"run_id": "r1", "keyframes": {"t": 0}}),
            "invalid_keyframes",
        ),
        (
            "summary an array of one",
            "/artifacts/replay",
            json!({"run_id": "r1", "keyframes": [], "summary": [1]}),
            "invalid_summary",
        ),
        (
            "replay run with a space",
            "/artifacts/replay",
            json!({"run_id": "r 1", "keyframes": []}),
            "invalid_run_id",
        ),
        (
            "audit filename with a slash",
            "/artifacts/audit",
            json!({"run_id": "r1", "filename": "a/b.json"}),
            "invalid_filename",
        ),
        (
            "summary not an object",
            "/artifacts/replay",
            json!({"run_id": "r1", "keyframes": [], "summary": [1, 2]}),
            "invalid_summary",
        ),
        (
            "ftp uri",
            "/artifacts/preview",
            json!({"run_id": "r1", "uri": "ftp://x"}),
            "invalid_uri",
        ),
        (
            "ftp uri with a path",
            "/artifacts/preview",
            json!({"run_id": "r1", "uri": "ftp://x/y.png"}),
            "invalid_uri",
        ),
        (
            "javascript uri",
            "/artifacts/preview",
            json!({"run_id": "r1", "uri": "javascript:alert(1)"}),
            "invalid_uri",
        ),
        (
            "uri with a space",
            "/artifacts/preview",
            json!({"run_id": "r1", "uri": "https://a b"}),
            "invalid_uri",
        ),
    ];
    for (name, path, body, code) in json_cases {
        let req = app.request(&acme, Method::POST, path).json(&body);
        refused(&app, name, req, bad, code).await;
    }

    let png = sample("image/png", 64);
    let binary = |query: &str, ct: &str, bytes: Vec<u8>| {
        app.request(&acme, Method::POST, &format!("/artifacts/preview{query}"))
            .header("content-type", ct)
            .body(bytes)
    };
    let binary_cases: Vec<(&str, RequestBuilder, &str)> = vec![
        (
            "binary without run_id",
            binary("?filename=p.png", "image/png", png.clone()),
            "invalid_request",
        ),
        (
            "binary without a query",
            binary("", "image/png", png.clone()),
            "invalid_request",
        ),
        (
            "binary named ..",
            binary("?run_id=r1&filename=..", "image/png", png.clone()),
            "invalid_filename",
        ),
        (
            "binary minimal svg",
            binary(
                "?run_id=r1&filename=p.svg",
                "image/svg+xml",
                b"<svg/>".to_vec(),
            ),
            "unsupported_content_type",
        ),
        (
            "binary minimal svg claiming png",
            binary("?run_id=r1&filename=p.png", "image/png", b"<svg/>".to_vec()),
            "content_mismatch",
        ),
        (
            "binary svg",
            binary(
                "?run_id=r1&filename=p.svg",
                "image/svg+xml",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            ),
            "unsupported_content_type",
        ),
        (
            "binary svg claiming png",
            binary(
                "?run_id=r1&filename=p.png",
                "image/png",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"
                    .to_vec(),
            ),
            "content_mismatch",
        ),
    ];
    for (name, req, code) in binary_cases {
        refused(&app, name, req, bad, code).await;
    }
    // The same routes take well-formed input.
    let ok = binary("?run_id=r1&filename=p.png", "image/png", png)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let ok = app
        .post(
            &acme,
            "/artifacts/preview",
            &json!({"run_id": "r1", "uri": "https://render.example/x.png"}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let ok = app
        .post(
            &acme,
            "/artifacts/replay",
            &json!({"run_id": "r1", "keyframes": [], "summary": {}}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
}

/// Creates a pending `image/png` artifact of `len` bytes; returns its id.
async fn pending(app: &TestApp, who: &Caller, len: usize, extra: Value) -> String {
    let res = app
        .create_artifact(who, "image/png", &sample("image/png", len), extra)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["artifact"]["status"], "pending");
    v["artifact"]["artifact_id"].as_str().unwrap().to_owned()
}

async fn status_of(app: &TestApp, who: &Caller, id: &str) -> String {
    let res = app.get(who, &format!("/artifacts/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    v["status"].as_str().unwrap().to_owned()
}

/// A body without Content-Length (chunked), in two chunks.
fn chunked(bytes: Vec<u8>) -> reqwest::Body {
    let (a, b) = bytes.split_at(bytes.len() / 2);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(a.to_vec()), Ok(b.to_vec())];
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn artifact_put_content_refuses_wrong_bytes_and_keeps_the_artifact_pending() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let len = 64;
    let good = sample("image/png", len);
    let plain = pending(&app, &acme, len, json!({})).await;
    let checked = pending(&app, &acme, len, json!({"sha256": sha256_hex(&good)})).await;
    // A larger one, also with its sha256 declared.
    let big_len = 400;
    let big_good = sample("image/png", big_len);
    let big = pending(
        &app,
        &acme,
        big_len,
        json!({"sha256": sha256_hex(&big_good)}),
    )
    .await;
    let mut big_wrong = big_good.clone();
    big_wrong[300] ^= 1;
    // Also a PNG of the right length, but not the bytes whose sha256 was declared.
    let mut other_png = good.clone();
    *other_png.last_mut().unwrap() ^= 0xff;
    let put = |id: &str, body: reqwest::Body| {
        app.request(&acme, Method::PUT, &format!("/artifacts/{id}/content"))
            .body(body)
    };
    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<(&str, &str, RequestBuilder, StatusCode, &str)> = vec![
        (
            "fewer bytes",
            &plain,
            put(&plain, good[..len - 1].to_vec().into()),
            bad,
            "size_mismatch",
        ),
        (
            "more bytes",
            &plain,
            put(&plain, sample("image/png", len + 1).into()),
            bad,
            "size_mismatch",
        ),
        (
            // reqwest leaves out `Content-Length: 0` for an empty body; send it explicitly.
            "empty body",
            &plain,
            put(&plain, Vec::new().into()).header("content-length", "0"),
            bad,
            "size_mismatch",
        ),
        (
            "fewer bytes, chunked",
            &plain,
            put(&plain, chunked(good[..len - 1].to_vec())),
            bad,
            "size_mismatch",
        ),
        (
            // Without a Content-Length the excess shows while streaming: the same answer as
            // `/o/` gives for a body beyond its signed length.
            "more bytes, chunked",
            &plain,
            put(&plain, chunked(sample("image/png", len + 1))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "not a png",
            &plain,
            put(&plain, vec![b'x'; len].into()),
            bad,
            "content_mismatch",
        ),
        (
            "svg as png",
            &plain,
            put(&plain, {
                let mut svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec();
                svg.resize(len, b' ');
                svg.into()
            }),
            bad,
            "content_mismatch",
        ),
        (
            "wrong content for the declared sha256",
            &checked,
            put(&checked, other_png.clone().into()),
            bad,
            "checksum_mismatch",
        ),
        (
            "wrong content for the declared sha256, chunked",
            &checked,
            put(&checked, chunked(other_png.clone())),
            bad,
            "checksum_mismatch",
        ),
        (
            "fewer bytes, sha256 declared",
            &big,
            put(&big, big_good[..big_len - 1].to_vec().into()),
            bad,
            "size_mismatch",
        ),
        (
            "one byte more, sha256 declared",
            &big,
            put(&big, [big_good.as_slice(), b"x"].concat().into()),
            bad,
            "size_mismatch",
        ),
        (
            "a gif, sha256 declared",
            &big,
            put(
                &big,
                b"GIF89a"
                    .iter()
                    .copied()
                    .cycle()
                    .take(big_len)
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            bad,
            "content_mismatch",
        ),
        (
            "one bit flipped mid-file, sha256 declared",
            &big,
            put(&big, big_wrong.into()),
            bad,
            "checksum_mismatch",
        ),
    ];
    for (name, id, req, status, code) in cases {
        eprintln!("case: {name}");
        let before = app.footprint().await;
        let body = problem(req.send().await.unwrap(), status, code).await;
        assert_eq!(
            app.footprint().await,
            before,
            "{name} wrote something: {body}"
        );
        assert_eq!(status_of(&app, &acme, id).await, "pending", "{name}");
    }
    // The right bytes still go in, once.
    for (id, good) in [(&plain, &good), (&checked, &good), (&big, &big_good)] {
        let res = app.put_content(&acme, id, good).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], "available");
        assert_eq!(v["sha256"], sha256_hex(good));
        assert_eq!(status_of(&app, &acme, id).await, "available");
        let again = put(id, good.clone().into());
        refused(
            &app,
            "second upload",
            again,
            StatusCode::CONFLICT,
            "not_pending",
        )
        .await;
    }
}

#[tokio::test]
async fn artifact_get_refuses_bad_waits_and_ids() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 32), json!({}))
        .await;
    let id = a["artifact_id"].as_str().unwrap();
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "wait above the max",
            format!("/artifacts/{id}?wait=61"),
            StatusCode::BAD_REQUEST,
            "invalid_wait",
        ),
        (
            "wait not a number",
            format!("/artifacts/{id}?wait=abc"),
            StatusCode::BAD_REQUEST,
            "invalid_wait",
        ),
        (
            "negative wait",
            format!("/artifacts/{id}?wait=-1"),
            StatusCode::BAD_REQUEST,
            "invalid_wait",
        ),
        (
            "id not a uuid",
            "/artifacts/not-a-uuid".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "content of an id not a uuid",
            "/artifacts/not-a-uuid/content".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "lineage of an id not a uuid",
            "/artifacts/not-a-uuid/lineage".into(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "manifest of an escaped traversal run",
            "/runs/..%2Fx/artifacts".into(),
            StatusCode::BAD_REQUEST,
            "invalid_run_id",
        ),
    ];
    for (name, path, status, code) in cases {
        let req = app.request(&acme, Method::GET, &path);
        refused(&app, name, req, status, code).await;
    }
    // The limit itself is allowed (and an available artifact answers at once).
    let res = app.get(&acme, &format!("/artifacts/{id}?wait=60")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn artifact_legal_hold_and_complete_refuse_bad_bodies() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let a = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 32), json!({}))
        .await;
    let id = a["artifact_id"].as_str().unwrap();
    refused(
        &app,
        "hold not a bool",
        app.request(&acme, Method::PUT, &format!("/artifacts/{id}/legal-hold"))
            .json(&json!({"hold": "yes"})),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    refused(
        &app,
        "complete with malformed json",
        app.request(&acme, Method::POST, &format!("/artifacts/{id}/complete"))
            .header("content-type", "application/json")
            .body("{\"parts\": ["),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    assert_eq!(status_of(&app, &acme, id).await, "available");
}
