//! Private delivery through CloudFront signing, end to end: with CloudFront keys configured,
//! private items get CloudFront signed URLs; the run manifest signs one custom policy for the
//! run's prefix; `POST /runs/{run}/cdn-cookies` hands out signed cookies for it. Cairn's own
//! `/cdn/` endpoint (the CDN when `CAIRN_CDN_DOMAIN` is unset) checks grants as CloudFront does:
//! signature, resource, expiry, start time and source IP. The signer itself is proven against
//! botocore's reference vectors in `cdn::signer`'s unit tests.
use std::collections::HashMap;

use cairn::{
    cdn::signer::{
        decode, Grant, HashAlgorithm, Policy, Signer, SigningKey, Verifier, VerifyingKey,
    },
    config::Settings,
};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use crate::{
    delivery::{key_of, manifest, url_path},
    helpers::{problem, sample, sha256_hex, Caller, TestApp},
};

const KEY_ID: &str = "KTESTKEY";

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/cloudfront/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// CloudFront signing with the fixture key `file` (tests elsewhere use it too).
pub fn with_key(s: &mut Settings, file: &str, hash: &str) {
    s.set("CAIRN_CLOUDFRONT_KEY_PAIR_ID", KEY_ID);
    s.set("CAIRN_CLOUDFRONT_PRIVATE_KEY", &fixture(file));
    s.set("CAIRN_CLOUDFRONT_HASH_ALGORITHM", hash);
}

/// A signer holding the same key as the app, for grants the API would not hand out.
fn test_signer(file: &str) -> Signer {
    let pem = std::fs::read(fixture(file)).unwrap();
    let key = SigningKey::from_pem(KEY_ID, &pem, chrono::DateTime::UNIX_EPOCH).unwrap();
    Signer::new(vec![key], HashAlgorithm::Sha256).unwrap()
}

fn params(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// `url` with the query parameter `name` set to `value` (raw), or removed for `None`.
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        parts.push(format!("{name}={v}"));
    }
    format!("{base}?{}", parts.join("&"))
}

async fn get(app: &TestApp, url: &str, cookies: Option<&str>) -> reqwest::Response {
    let mut r = app.client.get(url);
    if let Some(c) = cookies {
        r = r.header(header::COOKIE, c);
    }
    r.send().await.unwrap()
}

async fn ok_bytes(res: reqwest::Response) -> Vec<u8> {
    let status = res.status();
    let body = res.bytes().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    body.to_vec()
}

async fn item(
    app: &TestApp,
    who: &Caller,
    run: &str,
    vis: &str,
    name: &str,
    len: usize,
) -> (Value, Vec<u8>) {
    let bytes = sample("image/png", len);
    let a = app
        .stream_artifact(
            who,
            "image/png",
            &bytes,
            json!({"run_id": run, "visibility": vis, "filename": name}),
        )
        .await;
    (a, bytes)
}

#[tokio::test]
async fn private_urls_are_cloudfront_signed_and_the_cdn_checks_them() {
    for (file, hash) in [("rsa-2048.pem", "SHA256"), ("ecdsa-p256.pem", "SHA1")] {
        let app = TestApp::spawn_with(|s| with_key(s, file, hash)).await;
        let acme = app.owner("acme", "dev");
        let (a, bytes) = item(&app, &acme, "r1", "private", "take one.png", 1400).await;
        let (other, _) = item(&app, &acme, "r1", "private", "other.png", 1500).await;
        let url = a["url"].as_str().unwrap().to_owned();
        let cdn_url = format!("{}/cdn/{}", app.base, url_path(&key_of(&a)));
        assert!(
            url.starts_with(&format!("{cdn_url}?response-content-disposition=")),
            "{url}"
        );
        let p = params(&url);
        assert_eq!(p["Key-Pair-Id"], KEY_ID);
        assert!(
            p.contains_key("Expires") && p.contains_key("Signature"),
            "canned: {url}"
        );
        assert_eq!(
            p.get("Hash-Algorithm").map(String::as_str),
            (hash == "SHA256").then_some("SHA256")
        );
        let res = get(&app, &url, None).await;
        assert!(res.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("filename=\"take one.png\""));
        assert_eq!(ok_bytes(res).await, bytes, "{file}");

        // Tampering with anything the signature covers is refused.
        let expires: i64 = p["Expires"].parse().unwrap();
        let later = with_param(&url, "Expires", Some(&(expires + 60).to_string()));
        problem(
            get(&app, &later, None).await,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        )
        .await;
        let renamed = url.replace("take%2520one.png", "evil.png");
        assert_ne!(renamed, url);
        problem(
            get(&app, &renamed, None).await,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        )
        .await;
        let other_path = url.replace(&url_path(&key_of(&a)), &url_path(&key_of(&other)));
        problem(
            get(&app, &other_path, None).await,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        )
        .await;
        let wrong_key = with_param(&url, "Key-Pair-Id", Some("KOTHER"));
        problem(
            get(&app, &wrong_key, None).await,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        )
        .await;
        let sig = &p["Signature"];
        let flipped = format!(
            "{}{}",
            if sig.starts_with('A') { "B" } else { "A" },
            &sig[1..]
        );
        let forged = with_param(&url, "Signature", Some(&flipped));
        problem(
            get(&app, &forged, None).await,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        )
        .await;
        let unsigned = with_param(&url, "Signature", None);
        problem(
            get(&app, &unsigned, None).await,
            StatusCode::FORBIDDEN,
            "signature_required",
        )
        .await;

        // Public items stay unsigned.
        let (public, pbytes) = item(&app, &acme, "r1", "public", "p.png", 700).await;
        let purl = public["url"].as_str().unwrap();
        assert_eq!(
            purl,
            format!("{}/cdn/{}", app.base, url_path(&key_of(&public)))
        );
        assert_eq!(ok_bytes(get(&app, purl, None).await).await, pbytes);
    }
}

#[tokio::test]
async fn expired_urls_are_refused() {
    let app = TestApp::spawn_with(|s| {
        with_key(s, "rsa-2048.pem", "SHA256");
        s.set("CAIRN_PRESIGN_TTL_SECS", "1");
    })
    .await;
    let acme = app.owner("acme", "dev");
    let (a, _) = item(&app, &acme, "r1", "private", "a.png", 600).await;
    let url = a["url"].as_str().unwrap();
    let expires: i64 = params(url)["Expires"].parse().unwrap();
    let wait = expires - chrono::Utc::now().timestamp() + 1;
    tokio::time::sleep(std::time::Duration::from_millis(
        wait.max(0) as u64 * 1000 + 100,
    ))
    .await;
    problem(
        get(&app, url, None).await,
        StatusCode::FORBIDDEN,
        "url_expired",
    )
    .await;
}

#[tokio::test]
async fn one_policy_signs_the_whole_run_manifest() {
    let app = TestApp::spawn_with(|s| with_key(s, "rsa-2048.pem", "SHA256")).await;
    let acme = app.owner("acme", "dev");
    let mut private = Vec::new();
    for i in 0..6 {
        private.push(item(&app, &acme, "r1", "private", &format!("f{i}.png"), 800 + i).await);
    }
    let (public, _) = item(&app, &acme, "r1", "public", "pub.png", 900).await;
    let signer = app.state.cdn.signer().unwrap();

    let before = signer.signing_ops();
    let items = manifest(&app, &acme, "r1").await;
    assert_eq!(
        signer.signing_ops() - before,
        1,
        "one signature for the whole manifest"
    );
    assert_eq!(items.len(), 7);
    let mut policies = std::collections::HashSet::new();
    for ((a, bytes), listed) in private.iter().zip(&items) {
        assert_eq!(listed["artifact_id"], a["artifact_id"]);
        let url = listed["url"].as_str().unwrap();
        let p = params(url);
        assert!(
            !p.contains_key("Expires"),
            "custom policy, not canned: {url}"
        );
        policies.insert((p["Policy"].clone(), p["Signature"].clone()));
        let res = get(&app, url, None).await;
        let name = a["filename"].as_str().unwrap();
        assert!(res.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(name));
        assert_eq!(ok_bytes(res).await, *bytes);
    }
    assert_eq!(policies.len(), 1, "every private URL reuses the one policy");
    let (policy, _) = policies.into_iter().next().unwrap();
    let doc: Value = serde_json::from_slice(&decode(&policy).unwrap()).unwrap();
    let stmt = &doc["Statement"][0];
    assert_eq!(
        stmt["Resource"],
        format!("{}/cdn/tenants/acme/dev/runs/r1/*", app.base)
    );
    let exp = stmt["Condition"]["DateLessThan"]["AWS:EpochTime"]
        .as_i64()
        .unwrap();
    assert!((exp - chrono::Utc::now().timestamp() - 3600).abs() < 10);
    assert_eq!(
        items[6]["url"], public["url"],
        "public items need no signature"
    );

    // A run with only public items signs nothing.
    item(&app, &acme, "r2", "public", "only.png", 910).await;
    let before = signer.signing_ops();
    manifest(&app, &acme, "r2").await;
    assert_eq!(signer.signing_ops(), before);

    // Items that share another run's objects (dedup) lie outside the run's prefix: each gets a
    // URL for its exact object (a canned policy), never a wildcard over the other run's prefix,
    // and they still download.
    let (_, shared) = &private[0];
    let res = app
        .create_artifact(
            &acme,
            "image/png",
            shared,
            json!({"run_id": "r3", "filename": "again.png", "sha256": sha256_hex(shared)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (_, shared2) = &private[1];
    let res = app
        .create_artifact(
            &acme,
            "image/png",
            shared2,
            json!({"run_id": "r3", "filename": "again2.png", "sha256": sha256_hex(shared2)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (_, own) = item(&app, &acme, "r3", "private", "own.png", 990).await;
    let before = signer.signing_ops();
    let items = manifest(&app, &acme, "r3").await;
    assert_eq!(
        signer.signing_ops() - before,
        3,
        "r3's policy, and one exact URL per shared object"
    );
    for i in [0, 1] {
        let url = items[i]["url"].as_str().unwrap();
        let p = params(url);
        assert!(
            p.contains_key("Expires") && !p.contains_key("Policy"),
            "a canned URL for the exact object: {url}"
        );
        assert!(url.starts_with(&format!("{}/cdn/tenants/acme/dev/runs/r1/", app.base)));
    }
    let p = params(items[2]["url"].as_str().unwrap());
    let doc: Value = serde_json::from_slice(&decode(&p["Policy"]).unwrap()).unwrap();
    assert_eq!(
        doc["Statement"][0]["Resource"],
        format!("{}/cdn/tenants/acme/dev/runs/r3/*", app.base)
    );
    // The signature of a shared item opens that object only, not r1's others.
    let shared_url = items[0]["url"].as_str().unwrap();
    let grant = shared_url.split_once('?').unwrap().1;
    let other = private[2].0["url"]
        .as_str()
        .unwrap()
        .split_once('?')
        .unwrap()
        .0;
    let res = get(&app, &format!("{other}?{grant}"), None).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    for (i, bytes) in [(0, shared), (1, shared2), (2, &own)] {
        let url = items[i]["url"].as_str().unwrap();
        let res = get(&app, url, None).await;
        let name = items[i]["filename"].as_str().unwrap();
        assert!(res.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(name));
        assert_eq!(ok_bytes(res).await, *bytes);
    }
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Cookie` header a browser would send back.
fn cookie_header(set: &[String]) -> String {
    set.iter()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn signed_cookies_open_the_runs_private_objects_and_nothing_else() {
    let app = TestApp::spawn_with(|s| with_key(s, "ecdsa-p256.pem", "SHA256")).await;
    let acme = app.owner("acme", "dev");
    let mine = [
        item(&app, &acme, "r1", "private", "a.png", 610).await,
        item(&app, &acme, "r1", "private", "b.png", 620).await,
    ];
    let (other_run, _) = item(&app, &acme, "r2", "private", "c.png", 630).await;
    let globex = app.owner("globex", "dev");
    let (other_tenant, _) = item(&app, &globex, "r1", "private", "d.png", 640).await;

    // acme's run r2 seen from another tenant or env: not found; without membership: forbidden.
    for (who, status, code) in [
        (
            app.owner("globex", "dev"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.owner("acme", "prod"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.caller(&[("globex", cairn::auth::Role::Owner)], "acme", "dev"),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ] {
        let res = app
            .request(&who, reqwest::Method::POST, "/runs/r2/cdn-cookies")
            .send()
            .await
            .unwrap();
        problem(res, status, code).await;
    }
    let signer = app.state.cdn.signer().unwrap();
    let before = signer.signing_ops();
    let viewer = app.caller(&[("acme", cairn::auth::Role::Viewer)], "acme", "dev");
    let res = app
        .request(&viewer, reqwest::Method::POST, "/runs/r1/cdn-cookies")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(signer.signing_ops() - before, 1);
    let set = set_cookies(&res);
    let names: Vec<&str> = set.iter().map(|c| c.split('=').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "CloudFront-Policy",
            "CloudFront-Signature",
            "CloudFront-Key-Pair-Id",
            "CloudFront-Hash-Algorithm"
        ]
    );
    for c in &set {
        assert!(c.contains("; Path=/cdn/tenants/acme/dev/runs/r1/;"), "{c}");
        assert!(c.contains("; HttpOnly") && c.contains("Max-Age="), "{c}");
        assert!(!c.contains("Secure"), "plain http: {c}");
    }
    assert!(set[2].starts_with(&format!("CloudFront-Key-Pair-Id={KEY_ID};")));
    assert!(set[3].starts_with("CloudFront-Hash-Algorithm=SHA256;"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["resource"],
        format!("{}/cdn/tenants/acme/dev/runs/r1/*", app.base)
    );
    assert_eq!(body["cookies"]["CloudFront-Key-Pair-Id"], KEY_ID);

    let jar = cookie_header(&set);
    for (a, bytes) in &mine {
        let plain = format!("{}/cdn/{}", app.base, url_path(&key_of(a)));
        problem(
            get(&app, &plain, None).await,
            StatusCode::FORBIDDEN,
            "signature_required",
        )
        .await;
        assert_eq!(ok_bytes(get(&app, &plain, Some(&jar)).await).await, *bytes);
    }
    for outside in [&other_run, &other_tenant] {
        let plain = format!("{}/cdn/{}", app.base, url_path(&key_of(outside)));
        problem(
            get(&app, &plain, Some(&jar)).await,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        )
        .await;
    }
    // A tampered cookie is refused.
    let tampered = jar.replace(
        "CloudFront-Key-Pair-Id=KTESTKEY",
        "CloudFront-Key-Pair-Id=KOTHER",
    );
    let plain = format!("{}/cdn/{}", app.base, url_path(&key_of(&mine[0].0)));
    problem(
        get(&app, &plain, Some(&tampered)).await,
        StatusCode::FORBIDDEN,
        "signature_invalid",
    )
    .await;
}

#[tokio::test]
async fn cookies_for_a_cdn_domain_are_secure_and_scoped() {
    let app = TestApp::spawn_with(|s| {
        with_key(s, "rsa-2048.pem", "SHA1");
        s.set("CAIRN_CDN_DOMAIN", "cdn.example.com");
        s.set("CAIRN_CDN_COOKIE_DOMAIN", "example.com");
    })
    .await;
    let acme = app.owner("acme", "prod");
    item(&app, &acme, "run.7", "private", "a.png", 650).await;
    let res = app
        .request(&acme, reqwest::Method::POST, "/runs/run.7/cdn-cookies")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let set = set_cookies(&res);
    assert_eq!(set.len(), 3, "no hash cookie with SHA-1: {set:?}");
    for c in &set {
        assert!(
            c.contains("; Path=/tenants/acme/prod/runs/run.7/; Max-Age="),
            "{c}"
        );
        assert!(
            c.ends_with("; Domain=example.com; Secure; HttpOnly; SameSite=None"),
            "{c}"
        );
    }
    let body: Value = res.json().await.unwrap();
    // The cookies verify against the public key, as CloudFront would check them.
    let cookies: Vec<(String, String)> = body["cookies"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let grant = Grant::from_cookies(cookies.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    let public = std::fs::read(fixture("rsa-2048.pub.pem")).unwrap();
    let verifier = Verifier::new(vec![VerifyingKey::from_pem(KEY_ID, &public).unwrap()]);
    let now = chrono::Utc::now().timestamp();
    let inside = "https://cdn.example.com/tenants/acme/prod/runs/run.7/image/x/a.png";
    assert_eq!(verifier.check(inside, &grant, now, None), Ok(()));
    let outside = "https://cdn.example.com/tenants/acme/prod/runs/run.8/image/x/a.png";
    assert!(verifier.check(outside, &grant, now, None).is_err());
}

#[tokio::test]
async fn cdn_domain_urls_verify_against_the_public_key() {
    let app = TestApp::spawn_with(|s| {
        with_key(s, "ecdsa-p256.pem", "SHA256");
        s.set("CAIRN_CDN_DOMAIN", "https://cdn.example.com");
    })
    .await;
    let acme = app.owner("acme", "dev");
    let (a, _) = item(&app, &acme, "r1", "private", "x.png", 660).await;
    let url = a["url"].as_str().unwrap();
    let plain = format!("https://cdn.example.com/{}", url_path(&key_of(&a)));
    assert!(
        url.starts_with(&format!("{plain}?response-content-disposition=")),
        "{url}"
    );
    let (resource, _) = url.split_once("&Expires=").unwrap();
    let p = params(url);
    let grant = Grant::from_query(p.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    let public = std::fs::read(fixture("ecdsa-p256.pub.pem")).unwrap();
    let verifier = Verifier::new(vec![VerifyingKey::from_pem(KEY_ID, &public).unwrap()]);
    let now = chrono::Utc::now().timestamp();
    assert_eq!(verifier.check(resource, &grant, now, None), Ok(()));
    assert!(
        verifier.check(&plain, &grant, now, None).is_err(),
        "canned: exactly one URL"
    );
}

#[tokio::test]
async fn the_cdn_enforces_ip_and_time_conditions() {
    let app = TestApp::spawn_with(|s| with_key(s, "rsa-2048.pem", "SHA256")).await;
    let acme = app.owner("acme", "dev");
    let (a, bytes) = item(&app, &acme, "r1", "private", "a.png", 670).await;
    let plain = format!("{}/cdn/{}", app.base, url_path(&key_of(&a)));
    let signer = test_signer("rsa-2048.pem");
    let now = chrono::Utc::now();
    let t = now.timestamp();
    let run = format!("{}/cdn/tenants/acme/dev/runs/r1/*", app.base);
    let policy = |resource: &str, less: i64, greater: Option<i64>, ip: Option<&str>| Policy {
        resource: resource.to_owned(),
        date_less_than: less,
        date_greater_than: greater,
        ip_address: ip.map(str::to_owned),
    };
    let cases: Vec<(Policy, Option<&str>)> = vec![
        (policy(&run, t + 600, None, None), None),
        (policy(&run, t + 600, None, Some("127.0.0.0/8")), None),
        (policy(&run, t + 600, None, Some("127.0.0.1")), None),
        (policy(&run, t + 600, Some(t - 60), None), None),
        (
            policy(&run, t + 600, None, Some("10.0.0.0/8")),
            Some("signature_invalid"),
        ),
        (
            policy(&run, t + 600, Some(t + 3600), None),
            Some("signature_invalid"),
        ),
        (policy(&run, t - 1, None, None), Some("url_expired")),
        (
            policy(&plain.replace("/r1/", "/r2/"), t + 600, None, None),
            Some("signature_invalid"),
        ),
        (
            policy(
                &format!("{}/cdn/tenants/acme/dev/runs/r?/*", app.base),
                t + 600,
                None,
                None,
            ),
            None,
        ),
    ];
    for (p, refused) in cases {
        let signed = signer.sign_custom(p.clone(), now).unwrap();
        let by_url = get(&app, &signed.apply(&plain), None).await;
        let jar = signed
            .cookies()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let by_cookie = get(&app, &plain, Some(&jar)).await;
        for res in [by_url, by_cookie] {
            match refused {
                None => assert_eq!(ok_bytes(res).await, bytes, "{p:?}"),
                Some(code) => {
                    problem(res, StatusCode::FORBIDDEN, code).await;
                }
            }
        }
    }
}

#[tokio::test]
async fn rotation_signs_with_the_newest_active_key_and_accepts_older_ones() {
    let both = |active_new: &'static str| {
        move |s: &mut Settings| {
            s.set("CAIRN_CLOUDFRONT_KEY_PAIR_ID", "KOLD,KNEW");
            s.set(
                "CAIRN_CLOUDFRONT_PRIVATE_KEY",
                &format!("{},{}", fixture("rsa-2048.pem"), fixture("ecdsa-p256.pem")),
            );
            s.set(
                "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM",
                &format!(",{active_new}"),
            );
        }
    };
    // The new key is not active yet: the old one signs.
    let app = TestApp::spawn_with(both("2999-01-01T00:00:00Z")).await;
    let acme = app.owner("acme", "dev");
    let (a, _) = item(&app, &acme, "r1", "private", "a.png", 680).await;
    assert_eq!(params(a["url"].as_str().unwrap())["Key-Pair-Id"], "KOLD");

    // Once it is active, the new key signs; URLs signed with the old one still work.
    let app = TestApp::spawn_with(both("2020-01-01T00:00:00Z")).await;
    let acme = app.owner("acme", "dev");
    let (a, bytes) = item(&app, &acme, "r1", "private", "a.png", 690).await;
    let url = a["url"].as_str().unwrap();
    assert_eq!(params(url)["Key-Pair-Id"], "KNEW");
    assert_eq!(ok_bytes(get(&app, url, None).await).await, bytes);
    let old = {
        let pem = std::fs::read(fixture("rsa-2048.pem")).unwrap();
        let key = SigningKey::from_pem("KOLD", &pem, chrono::DateTime::UNIX_EPOCH).unwrap();
        Signer::new(vec![key], HashAlgorithm::Sha256).unwrap()
    };
    let (resource, _) = url.split_once("&Expires=").unwrap();
    let signed = old
        .sign_canned(
            resource,
            chrono::Utc::now().timestamp() + 600,
            chrono::Utc::now(),
        )
        .unwrap();
    assert_eq!(
        ok_bytes(get(&app, &signed.apply(resource), None).await).await,
        bytes
    );
}

#[tokio::test]
async fn raw_asset_downloads_are_cloudfront_signed_for_their_lifetime() {
    let app = TestApp::spawn_with(|s| with_key(s, "ecdsa-p256.pem", "SHA256")).await;
    let acme = app.owner("acme", "dev");
    let asset = app.store(&acme, "notes v2.txt", b"raw bytes").await;
    let id = asset["asset_id"].as_str().unwrap();
    let res = app
        .post(
            &acme,
            "/storage/raw/presign-download",
            &json!({"asset_id": id, "expires_in": 120}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let url = v["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/cdn/tenants/acme/dev/raw/{id}/notes%20v2.txt?",
            app.base
        )),
        "{url}"
    );
    let expires: i64 = params(url)["Expires"].parse().unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        v["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires,
        expires_at.timestamp(),
        "the URL lives exactly as long as promised"
    );
    let res = get(&app, url, None).await;
    assert!(res.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("notes v2.txt"));
    assert_eq!(ok_bytes(res).await, b"raw bytes");
}
