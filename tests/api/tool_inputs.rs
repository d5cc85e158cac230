//! What canvas tools and skill handlers send (issue 15 §6): content types as tools spell them,
//! a binary preview's lineage and expiry in its query (unknown parameters refused), chunked
//! preview bodies, `actor_id` from the token, render references named after their URI.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, TestApp};

async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["artifact"].clone()
}

#[tokio::test]
async fn content_types_as_tools_spell_them_are_stored_canonically() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    for (i, (kind, alias, canonical)) in [
        ("image", "image/jpg", "image/jpeg"),
        ("audio", "audio/mp3", "audio/mpeg"),
        ("audio", "audio/x-wav", "audio/wav"),
        ("audio", "audio/wave", "audio/wav"),
        ("audio", "audio/vnd.wave", "audio/wav"),
        ("video", "video/x-m4v", "video/mp4"),
        ("bundle", "application/x-zip-compressed", "application/zip"),
        (
            "replay",
            "application/json; charset=utf-8",
            "application/json; charset=utf-8",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = sample(canonical.split(';').next().unwrap(), 600 + i);
        let res = app
            .post(
                &acme,
                "/artifacts",
                &json!({"run_id": "r1", "kind": kind, "filename": format!("f{i}"),
                        "content_type": alias, "size_bytes": bytes.len()}),
            )
            .await;
        let a = created(res).await;
        assert_eq!(a["content_type"], canonical, "{alias}");
        // The presigned upload names the canonical type, and the bytes are checked against it.
        let id = a["artifact_id"].as_str().unwrap();
        let res = app.put_content(&acme, id, &bytes).await;
        assert_eq!(res.status(), StatusCode::OK, "{alias}");
    }
    // The binary preview's own Content-Type header too.
    let jpeg = sample("image/jpeg", 500);
    let res = app
        .request(
            &acme,
            Method::POST,
            "/artifacts/preview?run_id=r1&filename=t.jpg",
        )
        .header("content-type", "image/jpg")
        .body(jpeg)
        .send()
        .await
        .unwrap();
    assert_eq!(created(res).await["content_type"], "image/jpeg");
    // An alias of nothing the kind allows is still refused.
    let res = app
        .post(
            &acme,
            "/artifacts",
            &json!({"run_id": "r1", "kind": "image", "filename": "x", "content_type": "image/x-icon",
                    "size_bytes": 10}),
        )
        .await;
    problem(res, StatusCode::BAD_REQUEST, "unsupported_content_type").await;
}

#[tokio::test]
async fn a_binary_preview_takes_lineage_and_expiry_in_its_query() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let parent = app.store(&acme, "source.bin", b"raw source").await;
    let other = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 640), json!({}))
        .await;
    let (p1, p2) = (
        parent["asset_id"].as_str().unwrap(),
        other["artifact_id"].as_str().unwrap(),
    );
    let expires = (chrono::Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let query = format!(
        "run_id=r1&filename=thumb.png&workspace_id=w1&project_id=p1&canvas_id=c1&rev=3\
         &correlation_id=corr-9&derived_from={p1}&derived_from={p2}\
         &expires_at={}",
        expires.replace('+', "%2B")
    );
    let res = app
        .request(&acme, Method::POST, &format!("/artifacts/preview?{query}"))
        .header("content-type", "image/png")
        .body(sample("image/png", 700))
        .send()
        .await
        .unwrap();
    let a = created(res).await;
    let l = &a["lineage"];
    assert_eq!(
        (
            &l["workspace_id"],
            &l["project_id"],
            &l["canvas_id"],
            &l["rev"],
            &l["correlation_id"]
        ),
        (
            &json!("w1"),
            &json!("p1"),
            &json!("c1"),
            &json!(3),
            &json!("corr-9")
        )
    );
    assert_eq!(l["derived_from"], json!([p1, p2]));
    assert_eq!(l["actor_id"], "alice", "the caller, by default");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(a["expires_at"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&expires).unwrap()
    );

    // Unknown or repeated parameters, and bad values, are refused; nothing is written.
    let before = app.footprint().await;
    for (query, code) in [
        ("run_id=r1&filename=t.png&workspaceid=w", "invalid_request"),
        ("run_id=r1&filename=t.png&lineage=x", "invalid_request"),
        (
            "run_id=r1&filename=t.png&canvas_id=a&canvas_id=b",
            "invalid_request",
        ),
        ("run_id=r1&run_id=r2&filename=t.png", "invalid_request"),
        ("run_id=r1&filename=t.png&rev=-1", "invalid_lineage"),
        ("run_id=r1&filename=t.png&rev=three", "invalid_lineage"),
        (
            "run_id=r1&filename=t.png&derived_from=nope",
            "invalid_lineage",
        ),
        (
            "run_id=r1&filename=t.png&expires_at=tomorrow",
            "invalid_expires_at",
        ),
    ] {
        let res = app
            .request(&acme, Method::POST, &format!("/artifacts/preview?{query}"))
            .header("content-type", "image/png")
            .body(sample("image/png", 300))
            .send()
            .await
            .unwrap();
        problem(res, StatusCode::BAD_REQUEST, code).await;
    }
    // A render reference takes everything in its JSON body.
    let res = app
        .request(&acme, Method::POST, "/artifacts/preview?run_id=r1")
        .json(&json!({"run_id": "r1", "uri": "https://render.example.com/a.png"}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn a_chunked_preview_of_unknown_length_is_stored_whole() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let png = sample("image/png", 300_000);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        png.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
    let res = app
        .request(
            &acme,
            Method::POST,
            "/artifacts/preview?run_id=r1&filename=c.png",
        )
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    let a = created(res).await;
    assert_eq!(a["size_bytes"], png.len());
    assert_eq!(a["status"], "available");
    let id = a["artifact_id"].as_str().unwrap();
    let res = app.get(&acme, &format!("/artifacts/{id}/content")).await;
    assert_eq!(res.bytes().await.unwrap().to_vec(), png);

    // Bounded: past the limit (here CAIRN_MAX_UPLOAD_BYTES, 1 MiB) it is refused, nothing kept.
    let before = app.footprint().await;
    let big = sample("image/png", 1_100_000);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(50_000).map(|c| Ok(c.to_vec())).collect();
    let res = app
        .request(
            &acme,
            Method::POST,
            "/artifacts/preview?run_id=r1&filename=big.png",
        )
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.footprint().await, before);
}

#[tokio::test]
async fn actor_id_defaults_to_the_callers_sub() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let plain = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 400), json!({}))
        .await;
    assert_eq!(plain["lineage"]["actor_id"], "alice");
    let named = app
        .stream_artifact(
            &acme,
            "image/png",
            &sample("image/png", 401),
            json!({"lineage": {"actor_id": "skill:render"}}),
        )
        .await;
    assert_eq!(named["lineage"]["actor_id"], "skill:render");
    let replay = created(
        app.post(
            &acme,
            "/artifacts/replay",
            &json!({"run_id": "r1", "keyframes": []}),
        )
        .await,
    )
    .await;
    assert_eq!(replay["lineage"]["actor_id"], "alice");
}

#[tokio::test]
async fn a_render_reference_is_named_after_its_uri() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let render = |body: Value| {
        let app = &app;
        let acme = acme.clone();
        async move { created(app.post(&acme, "/artifacts/preview", &body).await).await }
    };
    let a = render(json!({"run_id": "r1",
        "uri": "https://render.example.com/run-1/frame%200001.PNG?X-Amz-Signature=abc#top"}))
    .await;
    assert_eq!(
        (&a["filename"], &a["content_type"]),
        (&json!("frame 0001.PNG"), &json!("image/png"))
    );
    let a = render(json!({"run_id": "r1", "uri": "s3://renders/run-1/hero.jpeg"})).await;
    assert_eq!(
        (&a["filename"], &a["content_type"]),
        (&json!("hero.jpeg"), &json!("image/jpeg"))
    );
    // Nothing to tell: the old defaults.
    let a = render(json!({"run_id": "r1", "uri": "https://render.example.com/"})).await;
    assert_eq!(
        (&a["filename"], &a["content_type"]),
        (&json!("preview"), &json!("text/uri-list"))
    );
    // A filename given wins, and its extension says the type.
    let a = render(
        json!({"run_id": "r1", "uri": "https://render.example.com/x/y.png",
                          "filename": "cover.webp"}),
    )
    .await;
    assert_eq!(
        (&a["filename"], &a["content_type"]),
        (&json!("cover.webp"), &json!("image/webp"))
    );
}
