//! Viewing, not only downloading (issue 15 §7): images, audio, video and JSON are served
//! `inline` under the item's own name; active content shows inline only where it is served
//! sandboxed (Cairn's own endpoints, the CDN), else it is an attachment; `?download=true` (raw
//! assets: `"download": true`) asks for an attachment.
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{problem, sample, Caller, TestApp};

fn disposition(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK, "{}", res.url());
    res.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn url_of(app: &TestApp, who: &Caller, id: &str, query: &str) -> String {
    let v: Value = app
        .get(who, &format!("/artifacts/{id}{query}"))
        .await
        .json()
        .await
        .unwrap();
    v["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn media_show_inline_and_download_on_request() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let png = app
        .stream_artifact(
            &acme,
            "image/png",
            &sample("image/png", 900),
            json!({"filename": "hero.png"}),
        )
        .await;
    let id = png["artifact_id"].as_str().unwrap();
    // The delivery URL: shown, or saved when asked.
    let shown = disposition(
        &app.client
            .get(url_of(&app, &acme, id, "").await)
            .send()
            .await
            .unwrap(),
    );
    assert!(
        shown.starts_with("inline; filename=\"hero.png\""),
        "{shown}"
    );
    let saved = url_of(&app, &acme, id, "?download=true").await;
    let saved = disposition(&app.client.get(saved).send().await.unwrap());
    assert!(
        saved.starts_with("attachment; filename=\"hero.png\""),
        "{saved}"
    );
    // The content route likewise (streamed on the local store, a redirect on S3).
    let res = app.get(&acme, &format!("/artifacts/{id}/content")).await;
    assert!(disposition(&res).starts_with("inline;"));
    let res = app
        .get(&acme, &format!("/artifacts/{id}/content?download=true"))
        .await;
    assert!(disposition(&res).starts_with("attachment;"));
    problem(
        app.get(&acme, &format!("/artifacts/{id}/content?download=maybe"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_download",
    )
    .await;

    // A raw asset: an image shows, `"download": true` saves.
    let img = sample("image/png", 300);
    let p = app.presign(&acme, "scan.png", "image/png", &img).await;
    assert_eq!(app.put_upload(&p, &img).await.status(), StatusCode::OK);
    let raw = p["asset_id"].as_str().unwrap();
    assert_eq!(
        app.register(&acme, raw, &img, "image/png").await.status(),
        StatusCode::OK
    );
    for (download, expect) in [(false, "inline;"), (true, "attachment;")] {
        let v: Value = app
            .post(
                &acme,
                "/storage/raw/presign-download",
                &json!({"asset_id": raw, "download": download}),
            )
            .await
            .json()
            .await
            .unwrap();
        let res = app
            .client
            .get(v["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert!(disposition(&res).starts_with(expect), "download {download}");
    }
}

#[tokio::test]
async fn active_content_shows_only_where_it_is_sandboxed() {
    let app = TestApp::spawn().await;
    let acme = app.owner("acme", "dev");
    let page = app
        .stream_artifact(
            &acme,
            "text/html",
            b"<!doctype html><p>bundle",
            json!({"filename": "index.html"}),
        )
        .await;
    let id = page["artifact_id"].as_str().unwrap();
    let res = app
        .client
        .get(url_of(&app, &acme, id, "").await)
        .send()
        .await
        .unwrap();
    let d = disposition(&res);
    if app.is_s3() {
        // A presigned S3 GET is served by S3 as stored: no sandbox, so saved.
        assert!(d.starts_with("attachment;"), "{d}");
    } else {
        // Cairn's /o/ sandboxes it: an iframe shows the bundle, scripts do not run.
        assert!(d.starts_with("inline;"), "{d}");
        assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], "sandbox");
    }
    let res = app
        .client
        .get(url_of(&app, &acme, id, "?download=1").await)
        .send()
        .await
        .unwrap();
    assert!(disposition(&res).starts_with("attachment;"));
}

#[tokio::test]
async fn through_the_cdn_active_content_is_sandboxed_or_saved() {
    let app =
        TestApp::spawn_with(|s| crate::cdn_signed::with_key(s, "ecdsa-p256.pem", "SHA256")).await;
    let acme = app.owner("acme", "dev");
    let page = app
        .stream_artifact(
            &acme,
            "text/html",
            b"<!doctype html><p>cdn bundle",
            json!({"filename": "index.html"}),
        )
        .await;
    let png = app
        .stream_artifact(&acme, "image/png", &sample("image/png", 500), json!({}))
        .await;
    let page_url = url_of(&app, &acme, page["artifact_id"].as_str().unwrap(), "").await;
    assert!(
        page_url.contains("response-content-disposition=inline"),
        "{page_url}"
    );
    let res = app.client.get(&page_url).send().await.unwrap();
    let d = disposition(&res);
    if app.is_s3() {
        // Cairn's /cdn/ hands S3 objects over with a presigned GET: active content is saved.
        assert!(d.starts_with("attachment;"), "{d}");
    } else {
        assert!(d.starts_with("inline;"), "{d}");
        assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], "sandbox");
    }
    let png_url = url_of(&app, &acme, png["artifact_id"].as_str().unwrap(), "").await;
    let res = app.client.get(&png_url).send().await.unwrap();
    assert!(disposition(&res).starts_with("inline;"));
    // The manifest's URLs show too.
    let m: Value = app
        .request(&acme, Method::GET, "/runs/r1/artifacts")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for a in m["artifacts"].as_array().unwrap() {
        assert!(
            a["url"].as_str().unwrap().contains("disposition=inline"),
            "{a}"
        );
    }
}
