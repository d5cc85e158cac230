//! CDN settings: the base URL, CloudFront keys (parsed at start-up), cookies, invalidations and
//! CORS origins.
use super::{err_with, load, settings};
use crate::config::*;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/cloudfront/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn cdn_settings_name_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = fixture("rsa-2048.pem");
    let two = format!("{},{}", fixture("rsa-2048.pem"), fixture("ecdsa-p256.pem"));
    let (rsa4096, p384) = (fixture("rsa-4096.pem"), fixture("ecdsa-p384.pem"));
    let key = |id: &'static str, file: &str| -> Vec<(&'static str, String)> {
        vec![
            ("CAIRN_CLOUDFRONT_KEY_PAIR_ID", id.into()),
            ("CAIRN_CLOUDFRONT_PRIVATE_KEY", file.to_owned()),
        ]
    };
    let with = |mut vars: Vec<(&'static str, String)>, var: &'static str, value: &str| {
        vars.push((var, value.to_owned()));
        vars
    };
    let cases: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        (
            "CAIRN_CDN_DOMAIN is invalid",
            vec![("CAIRN_CDN_DOMAIN", "ftp://cdn.example.com".into())],
        ),
        (
            "CAIRN_CDN_DOMAIN is invalid",
            vec![("CAIRN_CDN_DOMAIN", "https://cdn.example.com/x?y".into())],
        ),
        (
            "CAIRN_CLOUDFRONT_PRIVATE_KEY is required",
            vec![("CAIRN_CLOUDFRONT_KEY_PAIR_ID", "K1".into())],
        ),
        (
            "CAIRN_CLOUDFRONT_KEY_PAIR_ID is required",
            vec![("CAIRN_CLOUDFRONT_PRIVATE_KEY", rsa.clone())],
        ),
        (
            "CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: 1 key(s) for 2",
            key("K1,K2", &rsa),
        ),
        (
            "CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: key `K1`",
            key("K1", &rsa4096),
        ),
        (
            "CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: key `K1`",
            key("K1", &p384),
        ),
        (
            "CAIRN_CLOUDFRONT_PRIVATE_KEY is invalid: cannot read",
            key("K1", "/nonexistent/key.pem"),
        ),
        ("CAIRN_CLOUDFRONT_KEY_PAIR_ID is invalid", key("K 1", &rsa)),
        (
            "CAIRN_CLOUDFRONT_KEY_PAIR_ID is invalid: `K1` is listed twice",
            key("K1,K1", &two),
        ),
        (
            "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM is invalid",
            with(
                key("K1", &rsa),
                "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM",
                "tomorrow",
            ),
        ),
        (
            "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM is invalid: no key is active yet",
            with(
                key("K1", &rsa),
                "CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM",
                "2999-01-01T00:00:00Z",
            ),
        ),
        (
            "CAIRN_CLOUDFRONT_HASH_ALGORITHM is invalid",
            vec![("CAIRN_CLOUDFRONT_HASH_ALGORITHM", "MD5".into())],
        ),
        (
            "CAIRN_CDN_COOKIE_DOMAIN is invalid",
            vec![("CAIRN_CDN_COOKIE_DOMAIN", "example .com".into())],
        ),
        (
            "CAIRN_CLOUDFRONT_DISTRIBUTION_ID is invalid",
            vec![("CAIRN_CLOUDFRONT_DISTRIBUTION_ID", "E12 3".into())],
        ),
        (
            "AWS_ENDPOINT_URL_CLOUDFRONT is invalid",
            vec![
                ("CAIRN_CLOUDFRONT_DISTRIBUTION_ID", "E123".into()),
                ("AWS_ENDPOINT_URL_CLOUDFRONT", "localhost:5000".into()),
            ],
        ),
        (
            "CAIRN_CORS_ORIGINS is invalid",
            vec![("CAIRN_CORS_ORIGINS", "player.example.com".into())],
        ),
        (
            "CAIRN_CORS_ORIGINS is invalid",
            vec![("CAIRN_CORS_ORIGINS", "https://*.example.com".into())],
        ),
    ];
    for (want, vars) in cases {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let msg = err_with(dir.path(), &vars);
        assert!(msg.starts_with(want), "expected `{want}`: {msg}");
    }
}

#[test]
fn cdn_settings_parse() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    let c = load(&s).unwrap();
    assert_eq!(c.cdn.base_url, None);
    assert!(matches!(c.cdn.signing, CdnSigning::Presigned));
    assert_eq!(c.cors_origins, CorsOrigins::None);

    s.set("CAIRN_CDN_DOMAIN", "d111111abcdef8.cloudfront.net/");
    s.set(
        "CAIRN_CORS_ORIGINS",
        "https://App.example.com/, http://localhost:3000",
    );
    // Two keys: one inline PEM with the curve parameters `openssl ecparam` writes first,
    // one by path; activation times in the same order.
    let ec = std::fs::read_to_string(fixture("ecdsa-p256.pem")).unwrap();
    let rsa = std::fs::read_to_string(fixture("rsa-2048.pem")).unwrap();
    s.set("CAIRN_CLOUDFRONT_KEY_PAIR_ID", "KEC, KRSA");
    s.set(
        "CAIRN_CLOUDFRONT_PRIVATE_KEY",
        &format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{ec}{rsa}"
        ),
    );
    s.set("CAIRN_CLOUDFRONT_KEY_ACTIVE_FROM", ",2030-01-01T00:00:00Z");
    s.set("CAIRN_CLOUDFRONT_HASH_ALGORITHM", "sha1");
    let c = load(&s).unwrap();
    assert_eq!(
        c.cdn.base_url.as_deref(),
        Some("https://d111111abcdef8.cloudfront.net")
    );
    assert_eq!(
        c.cors_origins,
        CorsOrigins::List(vec![
            "https://app.example.com".into(),
            "http://localhost:3000".into()
        ])
    );
    let CdnSigning::CloudFront(keys) = &c.cdn.signing else {
        panic!("expected CloudFront signing");
    };
    assert_eq!(keys.hash, crate::signer::HashAlgorithm::Sha1);
    let ids: Vec<&str> = keys.keys.iter().map(|k| k.key_pair_id()).collect();
    assert_eq!(ids, ["KEC", "KRSA"]);
    assert_eq!(keys.keys[0].active_from(), chrono::DateTime::UNIX_EPOCH);
    assert_eq!(
        keys.keys[1].active_from().to_rfc3339(),
        "2030-01-01T00:00:00+00:00"
    );
    assert!(
        !format!("{c:?}").contains("PRIVATE KEY"),
        "keys leaked into Debug"
    );
    assert!(
        !format!("{s:?}").contains("PRIVATE KEY"),
        "keys leaked into the settings' Debug"
    );
}
