//! The signer against botocore's reference vectors (`tests/fixtures/cloudfront/vectors.json`,
//! made by `scripts/cloudfront-vectors.py`), and its own rules case by case.
use std::{net::IpAddr, path::Path};

use chrono::TimeZone;
use serde::Deserialize;

use super::{policy::wildcard_match, *};

const RSA_ID: &str = "K2JCJMDEHXQW5F";
const EC_ID: &str = "K3ECDSAP256EXAMPLE";
const URL: &str = "https://d111111abcdef8.cloudfront.net/tenants/acme/prod/items/report.pdf";
const RUN: &str = "https://d111111abcdef8.cloudfront.net/tenants/acme/prod/runs/run-7/";
const T0: i64 = 1_767_225_600;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cloudfront")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn rsa(id: &str, from: i64) -> SigningKey {
    SigningKey::from_pem(id, &fixture("rsa-2048.pem"), t(from)).unwrap()
}

fn ec(id: &str, from: i64) -> SigningKey {
    SigningKey::from_pem(id, &fixture("ecdsa-p256.pem"), t(from)).unwrap()
}

fn signer(hash: HashAlgorithm) -> Signer {
    Signer::new(vec![rsa(RSA_ID, 0), ec(EC_ID, 0)], hash).unwrap()
}

fn both_keys() -> Verifier {
    Verifier::new(vec![
        rsa(RSA_ID, 0).verifying_key(),
        ec(EC_ID, 0).verifying_key(),
    ])
}

fn query_grant(query: &str) -> Option<Grant> {
    Grant::from_query(
        query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap_or((kv, ""))),
    )
}

fn cookie_grant(cookies: &[(&'static str, String)]) -> Grant {
    Grant::from_cookies(cookies.iter().map(|(k, v)| (*k, v.as_str()))).unwrap()
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn custom(resource: &str) -> Policy {
    Policy {
        resource: resource.into(),
        date_less_than: T0,
        date_greater_than: None,
        ip_address: None,
    }
}

// ---------------------------------------------------------------- reference vectors (botocore)

#[derive(Debug, Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    kind: String,
    canned: bool,
    algorithm: String,
    key: String,
    public_key: String,
    key_pair_id: String,
    hash: String,
    url: String,
    resource: String,
    expires: i64,
    date_greater_than: Option<i64>,
    ip: Option<String>,
    policy: String,
    signed_url: Option<String>,
    cookies: Option<Vec<(String, String)>>,
    signature: String,
}

impl Vector {
    fn hash(&self) -> HashAlgorithm {
        HashAlgorithm::parse(&self.hash).unwrap()
    }
    fn signer(&self) -> Signer {
        let key = SigningKey::from_pem(&self.key_pair_id, &fixture(&self.key), t(0)).unwrap();
        Signer::new(vec![key], self.hash()).unwrap()
    }
    fn public(&self) -> VerifyingKey {
        VerifyingKey::from_pem(&self.key_pair_id, &fixture(&self.public_key)).unwrap()
    }
    /// Cairn's signed policy for the vector's inputs.
    fn sign(&self, signer: &Signer) -> SignedPolicy {
        let now = t(self.expires - 3600);
        if self.canned {
            assert_eq!(self.resource, self.url);
            signer.sign_canned(&self.url, self.expires, now).unwrap()
        } else {
            let policy = Policy {
                resource: self.resource.clone(),
                date_less_than: self.expires,
                date_greater_than: self.date_greater_than,
                ip_address: self.ip.clone(),
            };
            signer.sign_custom(policy, now).unwrap()
        }
    }
    /// The vector's URL or cookies, as one comparable string, with `signature` masked.
    fn rendered(&self, signature: &str) -> String {
        match self.kind.as_str() {
            "url" => self.signed_url.clone().unwrap(),
            "cookies" => format!("{:?}", self.cookies.as_ref().unwrap()),
            k => panic!("{}: kind {k}", self.name),
        }
        .replace(signature, "<signature>")
    }
    /// The same rendering of Cairn's signed policy.
    fn render(&self, signed: &SignedPolicy) -> String {
        match self.kind.as_str() {
            "url" => signed.apply(&self.url),
            _ => {
                let c: Vec<(String, String)> = signed
                    .cookies()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                format!("{c:?}")
            }
        }
        .replace(&signed.signature, "<signature>")
    }
    /// botocore's grant, as the request would carry it.
    fn grant(&self) -> Grant {
        match self.kind.as_str() {
            "url" => {
                let signed = self.signed_url.as_deref().unwrap();
                let query = signed.strip_prefix(self.url.as_str()).unwrap();
                let sep = if self.url.contains('?') { "&" } else { "?" };
                query_grant(query.strip_prefix(sep).unwrap()).unwrap()
            }
            _ => Grant::from_cookies(
                self.cookies
                    .as_ref()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .unwrap(),
        }
    }
    /// An address inside the vector's range, if it has one.
    fn inside(&self) -> Option<IpAddr> {
        self.ip
            .as_deref()
            .map(|r| r.split('/').next().unwrap().parse().unwrap())
    }
}

fn vectors() -> Vec<Vector> {
    let doc: Vectors = serde_json::from_slice(&fixture("vectors.json")).unwrap();
    doc.vectors
}

#[test]
fn vectors_cover_every_case_for_each_key_and_hash() {
    let all = vectors();
    assert_eq!(all.len(), 52);
    for combo in ["rsa-sha1", "rsa-sha256", "ecdsa-sha1", "ecdsa-sha256"] {
        let n = all.iter().filter(|v| v.name.ends_with(combo)).count();
        assert_eq!(n, 13, "{combo}");
    }
    assert!(all.iter().any(|v| v.kind == "cookies" && !v.canned));
    assert!(all.iter().any(|v| v.resource.ends_with("/run-7/*")));
    assert!(all
        .iter()
        .any(|v| v.url.contains("?response-content-disposition=")));
    assert!(all.iter().any(|v| !v.resource.is_ascii()));
}

#[test]
fn vectors_policy_json_is_botocores() {
    for v in vectors() {
        let policy = Policy {
            resource: v.resource.clone(),
            date_less_than: v.expires,
            date_greater_than: v.date_greater_than,
            ip_address: v.ip.clone(),
        };
        assert_eq!(policy.to_json(), v.policy, "{}", v.name);
        assert_eq!(
            Policy::parse(v.policy.as_bytes()).unwrap().resource,
            v.resource
        );
    }
}

#[test]
fn vectors_rsa_urls_and_cookies_byte_for_byte() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v.algorithm == "rsa") {
        let signed = v.sign(&v.signer());
        assert_eq!(signed.signature, v.signature, "{}", v.name);
        match v.kind.as_str() {
            "url" => assert_eq!(
                signed.apply(&v.url),
                v.signed_url.clone().unwrap(),
                "{}",
                v.name
            ),
            _ => {
                let ours: Vec<(String, String)> = signed
                    .cookies()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                assert_eq!(&ours, v.cookies.as_ref().unwrap(), "{}", v.name);
            }
        }
        n += 1;
    }
    assert_eq!(n, 26);
}

#[test]
fn vectors_botocore_signatures_verify_and_grants_pass() {
    for v in vectors() {
        let sig = decode(&v.signature).unwrap();
        let public = v.public();
        assert!(
            public.verify(v.policy.as_bytes(), &sig, v.hash()),
            "{}",
            v.name
        );
        let other = match v.hash() {
            HashAlgorithm::Sha1 => HashAlgorithm::Sha256,
            HashAlgorithm::Sha256 => HashAlgorithm::Sha1,
        };
        assert!(
            !public.verify(v.policy.as_bytes(), &sig, other),
            "{}",
            v.name
        );
        // The public half derived from the private key is the committed public key.
        let derived = v.signer().verifier();
        let file = Verifier::new(vec![public]);
        let grant = v.grant();
        assert_eq!(grant.hash, v.hash(), "{}", v.name);
        for verifier in [&derived, &file] {
            let now = v.expires - 1;
            assert_eq!(
                verifier.check(&v.url, &grant, now, v.inside()),
                Ok(()),
                "{}",
                v.name
            );
            assert_eq!(
                verifier.check(&v.url, &grant, v.expires, v.inside()),
                Err(Denied::Expired),
                "{}",
                v.name
            );
            if let Some(start) = v.date_greater_than {
                assert_eq!(
                    verifier.check(&v.url, &grant, start, v.inside()),
                    Err(Denied::NotYetValid),
                    "{}",
                    v.name
                );
            }
            if v.ip.is_some() {
                assert_eq!(
                    verifier.check(&v.url, &grant, now, None),
                    Err(Denied::IpAddress),
                    "{}",
                    v.name
                );
            }
        }
    }
}

#[test]
fn vectors_ecdsa_same_policy_and_query_with_our_own_signature() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v.algorithm == "ecdsa") {
        let signer = v.signer();
        let signed = v.sign(&signer);
        // ECDSA is randomised: a fresh signature, everything else identical.
        assert_ne!(signed.signature, v.signature, "{}", v.name);
        assert_eq!(v.render(&signed), v.rendered(&v.signature), "{}", v.name);
        let sig = decode(&signed.signature).unwrap();
        assert!(
            v.public().verify(v.policy.as_bytes(), &sig, v.hash()),
            "{}",
            v.name
        );
        let grant = match v.kind.as_str() {
            "url" => query_grant(&signed.query()).unwrap(),
            _ => cookie_grant(&signed.cookies()),
        };
        let verifier = Verifier::new(vec![v.public()]);
        assert_eq!(
            verifier.check(&v.url, &grant, v.expires - 1, v.inside()),
            Ok(())
        );
        n += 1;
    }
    assert_eq!(n, 26);
}

// ---------------------------------------------------------------- CloudFront base64 and JSON

#[test]
fn base64_uses_cloudfronts_alphabet() {
    // 0xfb 0xff is `+/8=` in standard base64.
    assert_eq!(encode(&[0xfb, 0xff]), "-~8_");
    assert_eq!(encode(&[0xfb, 0xef, 0xbe]), "----");
    assert_eq!(encode(&[0xff, 0xff, 0xff]), "~~~~");
    assert_eq!(encode(b"a"), "YQ__");
    assert_eq!(encode(b""), "");
    assert_eq!(decode("-~8_").unwrap(), [0xfb, 0xff]);
    assert_eq!(decode("YQ__").unwrap(), b"a");
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.extend((0..=255u8).rev());
    for len in 0..bytes.len() {
        let e = encode(&bytes[..len]);
        assert!(!e.contains(['+', '/', '=']), "{e}");
        assert_eq!(decode(&e).unwrap(), &bytes[..len]);
    }
}

#[test]
fn base64_decode_refuses_other_alphabets_and_bad_padding() {
    for bad in [
        "+/8=", "-~8=", "-~8", "-~9_", "YQ", "YQ_", "Y___", "a b_", "%2B~8_", "YQ__\n", "é",
    ] {
        assert_eq!(decode(bad), None, "{bad:?}");
    }
}

#[test]
fn json_escapes_strings_as_python_json_dumps() {
    // Python: json.dumps("a\"b\\c/d\te\nf\rg\x08h\x0ci\x00j\x1fk\x7fl é数😀\u2028 <>&'")
    let resource = "a\"b\\c/d\te\nf\rg\u{8}h\u{c}i\0j\u{1f}k\u{7f}l é数😀\u{2028} <>&'";
    let escaped =
        r#"a\"b\\c/d\te\nf\rg\bh\fi\u0000j\u001fk\u007fl \u00e9\u6570\ud83d\ude00\u2028 <>&'"#;
    let policy = Policy::canned(resource, 1);
    let json = policy.to_json();
    assert_eq!(
        json,
        format!(
            r#"{{"Statement":[{{"Resource":"{escaped}","Condition":{{"DateLessThan":{{"AWS:EpochTime":1}}}}}}]}}"#
        )
    );
    assert!(json.is_ascii());
    assert_eq!(Policy::parse(json.as_bytes()).unwrap(), policy);
}

#[test]
fn json_condition_order_and_addresses() {
    let mut p = custom("https://x/*");
    p.date_greater_than = Some(-5);
    p.ip_address = Some("192.0.2.1".into());
    assert_eq!(
        p.to_json(),
        r#"{"Statement":[{"Resource":"https://x/*","Condition":{"DateLessThan":{"AWS:EpochTime":1767225600},"IpAddress":{"AWS:SourceIp":"192.0.2.1/32"},"DateGreaterThan":{"AWS:EpochTime":-5}}}]}"#
    );
    p.ip_address = Some("2001:db8::1".into());
    assert!(p.to_json().contains(r#""AWS:SourceIp":"2001:db8::1/128""#));
    p.ip_address = Some("10.0.0.0/8".into());
    assert!(p.to_json().contains(r#""AWS:SourceIp":"10.0.0.0/8""#));
    p.ip_address = Some(String::new());
    assert!(!p.to_json().contains("IpAddress"));
}

#[test]
fn policy_parse_accepts_cloudfronts_layouts_and_refuses_the_rest() {
    // The layout of CloudFront's own examples: whitespace, CRLF, conditions in another order.
    let doc = "{ \r\n \"Statement\": [ { \r\n \"Resource\":\"https://d/demo.php\", \r\n \
               \"Condition\":{ \"IpAddress\":{\"AWS:SourceIp\":\"207.171.180.101/32\"}, \
               \"DateGreaterThan\":{\"AWS:EpochTime\":1296860176}, \
               \"DateLessThan\":{\"AWS:EpochTime\":1296860226} } } ] }\r\n";
    assert_eq!(
        Policy::parse(doc.as_bytes()).unwrap(),
        Policy {
            resource: "https://d/demo.php".into(),
            date_less_than: 1296860226,
            date_greater_than: Some(1296860176),
            ip_address: Some("207.171.180.101/32".into()),
        }
    );
    let ok = r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#;
    assert!(Policy::parse(ok.as_bytes()).is_ok());
    for bad in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"Statement":[]}"#,
        r#"{"Statement":{}}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":7,"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":"r"}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":"5"}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5.5}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":99999999999999999999}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":5}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5},"Referer":{}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":"10.0.0.0/33"}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":"example.com"}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}},{"Resource":"s","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Effect":"Allow","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}],"Version":"1"}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]"#,
    ] {
        assert_eq!(
            Policy::parse(bad.as_bytes()),
            Err(Denied::Malformed),
            "{bad}"
        );
    }
    let deep = "[".repeat(100_000);
    assert_eq!(Policy::parse(deep.as_bytes()), Err(Denied::Malformed));
}

// ---------------------------------------------------------------- policy checks

#[test]
fn wildcards_star_and_question_mark_over_the_whole_url() {
    let cases = [
        ("https://d/a/*", "https://d/a/", true),
        (
            "https://d/a/*",
            "https://d/a/b/c.bin?response-content-disposition=x",
            true,
        ),
        ("https://d/a/*", "https://d/a", false),
        ("https://d/a/*", "https://d/ab/c", false),
        ("https://d/a/*", "http://d/a/b", false),
        ("*", "anything at all", true),
        ("*", "", true),
        ("https://d/f-?.bin", "https://d/f-1.bin", true),
        ("https://d/f-?.bin", "https://d/f-12.bin", false),
        ("https://d/f-?.bin", "https://d/f-.bin", false),
        ("https://d/f-?.bin", "https://d/f-é.bin", true),
        ("https://d/*/x/*.log", "https://d/a/b/x/y/z.log", true),
        ("https://d/*/x/*.log", "https://d/a/b/x/y/z.log2", false),
        ("https://d/a*b*c", "https://d/aXbYbZc", true),
        ("https://d/a*b*c", "https://d/aXbYbZ", false),
        ("https://d/exact", "https://d/exact", true),
        ("https://d/exact", "https://d/exact/", false),
        ("https://d/exact", "https://d/exac", false),
        ("https://d/x?a=1", "https://d/x?a=1", true),
        ("https://d/x?a=1", "https://d/x?a=12", false),
    ];
    for (pattern, url, expected) in cases {
        assert_eq!(wildcard_match(pattern, url), expected, "{pattern} {url}");
    }
}

/// The matcher against a plain recursive definition, on many small random inputs.
#[test]
fn wildcards_agree_with_the_definition() {
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, _) => t.is_empty(),
            (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(_), None) => false,
            (Some(&c), Some(&d)) => (c == b'?' || c == d) && reference(&p[1..], &t[1..]),
        }
    }
    let mut rng = Rng(0x5eed);
    let (mut yes, mut no) = (0, 0);
    for _ in 0..20_000 {
        let p = rng.string(b"ab/*?", 7);
        let t = rng.string(b"ab/?*", 8);
        let expected = reference(p.as_bytes(), t.as_bytes());
        assert_eq!(wildcard_match(&p, &t), expected, "{p:?} {t:?}");
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes > 1000 && no > 1000, "{yes} {no}");
}

#[test]
fn dates_are_strict_bounds() {
    let mut p = custom("https://d/*");
    p.date_greater_than = Some(T0 - 100);
    assert_eq!(p.allows("https://d/x", T0 - 1, None), Ok(()));
    assert_eq!(p.allows("https://d/x", T0, None), Err(Denied::Expired));
    assert_eq!(p.allows("https://d/x", T0 + 1, None), Err(Denied::Expired));
    assert_eq!(p.allows("https://d/x", T0 - 99, None), Ok(()));
    assert_eq!(
        p.allows("https://d/x", T0 - 100, None),
        Err(Denied::NotYetValid)
    );
    assert_eq!(
        p.allows("https://d/x", i64::MIN, None),
        Err(Denied::NotYetValid)
    );
    assert_eq!(p.allows("https://e/x", T0 - 1, None), Err(Denied::Resource));
}

#[test]
fn source_address_ranges() {
    let mut p = custom("*");
    let now = T0 - 1;
    let check =
        |p: &Policy, addr: Option<&str>| p.allows("u", now, addr.map(|a| a.parse().unwrap()));
    p.ip_address = Some("203.0.113.0/24".into());
    assert_eq!(check(&p, Some("203.0.113.0")), Ok(()));
    assert_eq!(check(&p, Some("203.0.113.255")), Ok(()));
    assert_eq!(check(&p, Some("::ffff:203.0.113.7")), Ok(()));
    assert_eq!(check(&p, Some("203.0.114.0")), Err(Denied::IpAddress));
    assert_eq!(check(&p, Some("203.0.112.255")), Err(Denied::IpAddress));
    assert_eq!(check(&p, Some("2001:db8::1")), Err(Denied::IpAddress));
    assert_eq!(check(&p, None), Err(Denied::IpAddress));
    p.ip_address = Some("192.0.2.10".into());
    assert_eq!(check(&p, Some("192.0.2.10")), Ok(()));
    assert_eq!(check(&p, Some("192.0.2.11")), Err(Denied::IpAddress));
    p.ip_address = Some("192.0.2.10/32".into());
    assert_eq!(check(&p, Some("192.0.2.10")), Ok(()));
    assert_eq!(check(&p, Some("192.0.2.11")), Err(Denied::IpAddress));
    p.ip_address = Some("0.0.0.0/0".into());
    assert_eq!(check(&p, Some("198.51.100.1")), Ok(()));
    assert_eq!(check(&p, Some("::1")), Err(Denied::IpAddress));
    p.ip_address = Some("2001:db8:1234::/48".into());
    assert_eq!(check(&p, Some("2001:db8:1234:ffff::1")), Ok(()));
    assert_eq!(check(&p, Some("2001:db8:1235::1")), Err(Denied::IpAddress));
    assert_eq!(check(&p, Some("203.0.113.1")), Err(Denied::IpAddress));
    p.ip_address = Some("::/0".into());
    assert_eq!(check(&p, Some("2001:db8::1")), Ok(()));
    p.ip_address = Some("2001:db8::1/128".into());
    assert_eq!(check(&p, Some("2001:db8::1")), Ok(()));
    assert_eq!(check(&p, Some("2001:db8::2")), Err(Denied::IpAddress));
    for bad in [
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/+8",
        "10.0.0/8",
        "::/129",
        "x",
        "",
    ] {
        p.ip_address = Some(bad.into());
        assert_eq!(check(&p, Some("10.0.0.1")), Err(Denied::Malformed), "{bad}");
    }
}

// ---------------------------------------------------------------- keys

#[test]
fn keys_load_from_pkcs1_sec1_and_pkcs8() {
    let rsa_pub = VerifyingKey::from_pem(RSA_ID, &fixture("rsa-2048.pub.pem")).unwrap();
    let ec_pub = VerifyingKey::from_pem(EC_ID, &fixture("ecdsa-p256.pub.pem")).unwrap();
    // `openssl ecparam -genkey` writes the curve before the key.
    let mut with_params =
        b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n".to_vec();
    with_params.extend(fixture("ecdsa-p256.pem"));
    for (file, pem, public, alg) in [
        (
            "rsa-2048.pem",
            fixture("rsa-2048.pem"),
            &rsa_pub,
            KeyAlgorithm::Rsa2048,
        ),
        (
            "rsa-2048.pk8.pem",
            fixture("rsa-2048.pk8.pem"),
            &rsa_pub,
            KeyAlgorithm::Rsa2048,
        ),
        (
            "ecdsa-p256.pem",
            fixture("ecdsa-p256.pem"),
            &ec_pub,
            KeyAlgorithm::EcdsaP256,
        ),
        (
            "ecdsa-p256.pk8.pem",
            fixture("ecdsa-p256.pk8.pem"),
            &ec_pub,
            KeyAlgorithm::EcdsaP256,
        ),
        (
            "EC PARAMETERS + SEC1",
            with_params,
            &ec_pub,
            KeyAlgorithm::EcdsaP256,
        ),
    ] {
        let key = SigningKey::from_pem("K1", &pem, t(7)).unwrap();
        assert_eq!(key.algorithm(), alg, "{file}");
        assert_eq!(key.key_pair_id(), "K1");
        assert_eq!(key.active_from(), t(7));
        assert_eq!(key.verifying_key().algorithm(), alg);
        for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
            let sig = key.sign(b"message", hash);
            assert!(public.verify(b"message", &sig, hash), "{file}");
            assert!(key.verifying_key().verify(b"message", &sig, hash), "{file}");
            assert!(!public.verify(b"messagE", &sig, hash), "{file}");
        }
    }
    assert_eq!(rsa_pub.key_pair_id(), RSA_ID);
    // PKCS#1 public keys too.
    let public = openssl::rsa::Rsa::public_key_from_pem(&fixture("rsa-2048.pub.pem")).unwrap();
    let pkcs1 = public.public_key_to_pem_pkcs1().unwrap();
    assert!(String::from_utf8_lossy(&pkcs1).contains("BEGIN RSA PUBLIC KEY"));
    let from_pkcs1 = VerifyingKey::from_pem(RSA_ID, &pkcs1).unwrap();
    let sig = rsa(RSA_ID, 0).sign(b"m", HashAlgorithm::Sha256);
    assert!(from_pkcs1.verify(b"m", &sig, HashAlgorithm::Sha256));
}

#[test]
fn rsa_signatures_are_deterministic_pkcs1_v15_and_ecdsa_ones_der() {
    let key = rsa(RSA_ID, 0);
    let a = key.sign(b"policy", HashAlgorithm::Sha1);
    assert_eq!(a.len(), 256);
    assert_eq!(a, key.sign(b"policy", HashAlgorithm::Sha1));
    assert_ne!(a, key.sign(b"policy", HashAlgorithm::Sha256));
    let key = ec(EC_ID, 0);
    let b = key.sign(b"policy", HashAlgorithm::Sha256);
    assert_eq!(b[0], 0x30, "a DER SEQUENCE");
    assert!((68..=72).contains(&b.len()), "{}", b.len());
    assert_ne!(b, key.sign(b"policy", HashAlgorithm::Sha256));
}

#[test]
fn keys_cloudfront_does_not_accept_are_refused_with_the_reason() {
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("rsa-1024", fixture("rsa-1024.pem"), "RSA key of 1024 bits"),
        ("rsa-4096", fixture("rsa-4096.pem"), "RSA key of 4096 bits"),
        ("p-384", fixture("ecdsa-p384.pem"), "curve secp384r1"),
        ("ed25519", fixture("ed25519.pem"), "Ed25519"),
        ("rsa-pss", rsa_pss_pem(), "RSA-PSS"),
    ];
    for (name, pem, reason) in cases {
        let err = SigningKey::from_pem("K1", &pem, t(0)).unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)), "{name}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(reason), "{name}: {msg}");
        assert!(msg.contains("RSA-2048 and ECDSA P-256"), "{name}: {msg}");
    }
    let err = VerifyingKey::from_pem("K1", &fixture("ed25519.pub.pem")).unwrap_err();
    assert!(err.to_string().contains("Ed25519"), "{err}");
}

/// A key whose modulus belongs to another key: it parses, but cannot sign.
#[test]
fn inconsistent_keys_are_refused() {
    use openssl::{bn::BigNum, pkey::PKey, rsa::Rsa};
    let a = Rsa::private_key_from_pem(&fixture("rsa-2048.pem")).unwrap();
    let b = Rsa::generate(2048).unwrap();
    let c = |n: &openssl::bn::BigNumRef| BigNum::from_slice(&n.to_vec()).unwrap();
    let mixed = Rsa::from_private_components(
        c(b.n()),
        c(a.e()),
        c(a.d()),
        c(a.p().unwrap()),
        c(a.q().unwrap()),
        c(a.dmp1().unwrap()),
        c(a.dmq1().unwrap()),
        c(a.iqmp().unwrap()),
    )
    .unwrap();
    let pem = PKey::from_rsa(mixed)
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    let err = SigningKey::from_pem("K1", &pem, t(0)).unwrap_err();
    assert!(err.to_string().contains("inconsistent"), "{err}");
}

fn rsa_pss_pem() -> Vec<u8> {
    let ctx = openssl::pkey_ctx::PkeyCtx::new_id(openssl::pkey::Id::RSA_PSS);
    let mut ctx = ctx.unwrap();
    ctx.keygen_init().unwrap();
    ctx.set_rsa_keygen_bits(2048).unwrap();
    ctx.keygen().unwrap().private_key_to_pem_pkcs8().unwrap()
}

#[test]
fn unusable_pem_is_refused_without_prompting() {
    let rsa_pem = fixture("rsa-2048.pem");
    let body = String::from_utf8(rsa_pem.clone()).unwrap();
    let openssl_key = openssl::pkey::PKey::private_key_from_pem(&rsa_pem).unwrap();
    let encrypted = openssl_key
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
        .unwrap();
    let truncated = body[..body.len() / 2].to_owned() + "\n-----END RSA PRIVATE KEY-----\n";
    let corrupt = body.replacen("MII", "MIJ", 1);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "BEGIN"),
        ("garbage", b"not a key at all".to_vec(), "BEGIN"),
        ("binary", vec![0, 159, 146, 150, 255], "BEGIN"),
        ("public key", fixture("rsa-2048.pub.pem"), "private"),
        ("encrypted", encrypted, "encrypted"),
        ("truncated", truncated.into_bytes(), "cannot parse"),
        ("corrupt", corrupt.into_bytes(), "cannot parse"),
        (
            "garbage PEM",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            "cannot parse",
        ),
    ];
    for (name, pem, reason) in cases {
        let err = SigningKey::from_pem("K1", &pem, t(0)).unwrap_err();
        assert!(matches!(err, KeyError::Pem(_)), "{name}: {err:?}");
        assert!(err.to_string().contains(reason), "{name}: {err}");
    }
    for pem in [fixture("rsa-2048.pem"), b"junk".to_vec()] {
        assert!(matches!(
            VerifyingKey::from_pem("K1", &pem),
            Err(KeyError::Pem(_))
        ));
    }
}

#[test]
fn key_pair_ids_must_be_cloudfront_ids() {
    for id in ["", "K 1", "K1&Policy=x", "K1;", "ké", &"K".repeat(129)] {
        let err = SigningKey::from_pem(id, &fixture("rsa-2048.pem"), t(0)).unwrap_err();
        assert!(err.to_string().contains("key pair id"), "{id:?}: {err}");
        assert!(VerifyingKey::from_pem(id, &fixture("rsa-2048.pub.pem")).is_err());
    }
    assert!(SigningKey::from_pem("APKAEIBAERJR2EXAMPLE", &fixture("rsa-2048.pem"), t(0)).is_ok());
}

#[test]
fn signing_keys_are_send_sync_and_do_not_debug_print_the_key() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SigningKey>();
    send_sync::<Signer>();
    send_sync::<Verifier>();
    for file in ["rsa-2048.pem", "ecdsa-p256.pem"] {
        let pem = fixture(file);
        let key = SigningKey::from_pem("KDEBUG", &pem, t(0)).unwrap();
        let signer = Signer::new(vec![key], HashAlgorithm::Sha1).unwrap();
        let debug = format!(
            "{signer:?} {:?} {:#?}",
            signer.active(t(0)).unwrap(),
            signer
        );
        assert!(
            debug.contains("KDEBUG") && debug.contains("****"),
            "{debug}"
        );
        let text = String::from_utf8(pem).unwrap();
        for line in text.lines().filter(|l| !l.starts_with("-----")) {
            for chunk in line.as_bytes().chunks(12).filter(|c| c.len() == 12) {
                let chunk = std::str::from_utf8(chunk).unwrap();
                assert!(!debug.contains(chunk), "{file}: {chunk} in {debug}");
            }
        }
    }
}

// ---------------------------------------------------------------- signer

#[test]
fn signer_refuses_no_keys_and_repeated_ids() {
    assert!(Signer::new(vec![], HashAlgorithm::Sha1).is_err());
    let err = Signer::new(
        vec![rsa("KA", 0), ec("KB", 0), ec("KA", 5)],
        HashAlgorithm::Sha1,
    );
    assert!(err.unwrap_err().to_string().contains("`KA`"));
}

#[test]
fn rotation_picks_the_newest_active_key() {
    let signer = Signer::new(
        vec![
            ec("KLATER", T0 + 1000),
            rsa("KOLD", T0),
            ec("KNEW", T0 + 100),
            rsa("KTIE", T0 + 100),
        ],
        HashAlgorithm::Sha256,
    )
    .unwrap();
    assert_eq!(signer.hash(), HashAlgorithm::Sha256);
    match signer.active(t(T0 - 1)) {
        Err(SignError::NoActiveKey(at)) => assert_eq!(at, t(T0)),
        other => panic!("{other:?}"),
    }
    assert!(signer.sign_canned(URL, T0 + 5000, t(T0 - 1)).is_err());
    assert_eq!(signer.signing_ops(), 0);
    let id = |now| signer.active(t(now)).unwrap().key_pair_id().to_owned();
    assert_eq!(id(T0), "KOLD");
    assert_eq!(id(T0 + 99), "KOLD");
    assert_eq!(id(T0 + 100), "KNEW", "ties go to the first configured");
    assert_eq!(id(T0 + 999), "KNEW");
    assert_eq!(id(T0 + 1000), "KLATER");
    let end_of_time = signer.active(DateTime::<Utc>::MAX_UTC).unwrap();
    assert_eq!(end_of_time.key_pair_id(), "KLATER");
    // The signature is the active key's, and verifies only with it.
    let verifier = signer.verifier();
    for (now, expected) in [(T0 + 50, "KOLD"), (T0 + 500, "KNEW"), (T0 + 2000, "KLATER")] {
        let signed = signer.sign_canned(URL, T0 + 5000, t(now)).unwrap();
        assert_eq!(signed.key_pair_id, expected);
        let mut grant = query_grant(&signed.query()).unwrap();
        assert_eq!(verifier.check(URL, &grant, now, None), Ok(()));
        grant.key_pair_id = if expected == "KOLD" { "KTIE" } else { "KOLD" }.into();
        if expected == "KOLD" {
            // KOLD and KTIE are the same RSA key under two ids: the same signature verifies.
            assert_eq!(verifier.check(URL, &grant, now, None), Ok(()));
        } else {
            assert_eq!(
                verifier.check(URL, &grant, now, None),
                Err(Denied::BadSignature)
            );
        }
    }
}

#[test]
fn each_signed_policy_is_one_signing_operation() {
    let signer = signer(HashAlgorithm::Sha1);
    assert_eq!(signer.signing_ops(), 0);
    let canned = signer.sign_canned(URL, T0, t(0)).unwrap();
    assert_eq!(signer.signing_ops(), 1);
    let grant = signer
        .sign_custom(custom(&format!("{RUN}*")), t(0))
        .unwrap();
    assert_eq!(signer.signing_ops(), 2);
    // Applying a signed policy to many URLs signs nothing.
    for i in 0..100 {
        let url = grant.apply(&format!("{RUN}file-{i}.bin"));
        assert!(url.contains(&grant.signature));
    }
    let _ = (
        canned.query(),
        canned.cookies(),
        canned.apply(URL),
        signer.verifier(),
    );
    assert_eq!(signer.signing_ops(), 2);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    signer.sign_canned(URL, T0, t(0)).unwrap();
                }
            });
        }
    });
    assert_eq!(signer.signing_ops(), 22);
}

#[test]
fn query_and_cookie_layout() {
    let signed = signer(HashAlgorithm::Sha1)
        .sign_canned(URL, T0, t(0))
        .unwrap();
    assert!(signed.canned);
    assert_eq!(signed.key_pair_id, RSA_ID);
    assert_eq!(
        signed.query(),
        format!(
            "Expires={T0}&Signature={}&Key-Pair-Id={RSA_ID}",
            signed.signature
        )
    );
    assert_eq!(signed.apply(URL), format!("{URL}?{}", signed.query()));
    assert_eq!(
        signed.apply("https://d/x?a=b"),
        format!("https://d/x?a=b&{}", signed.query())
    );
    assert_eq!(
        signed.cookies(),
        vec![
            ("CloudFront-Expires", T0.to_string()),
            ("CloudFront-Signature", signed.signature.clone()),
            ("CloudFront-Key-Pair-Id", RSA_ID.to_owned()),
        ]
    );
    let signed = signer(HashAlgorithm::Sha256)
        .sign_custom(custom(URL), t(0))
        .unwrap();
    assert!(!signed.canned);
    assert_eq!(
        decode(&signed.policy_b64).unwrap(),
        custom(URL).to_json().as_bytes()
    );
    assert_eq!(
        signed.query(),
        format!(
            "Policy={}&Signature={}&Key-Pair-Id={RSA_ID}&Hash-Algorithm=SHA256",
            signed.policy_b64, signed.signature
        )
    );
    assert_eq!(
        signed.cookies(),
        vec![
            ("CloudFront-Policy", signed.policy_b64.clone()),
            ("CloudFront-Signature", signed.signature.clone()),
            ("CloudFront-Key-Pair-Id", RSA_ID.to_owned()),
            ("CloudFront-Hash-Algorithm", "SHA256".to_owned()),
        ]
    );
    assert!(signed
        .query()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_~=&".contains(&b)));
}

// ---------------------------------------------------------------- verifier

#[test]
fn canned_grants_cover_exactly_their_url_until_expires() {
    let verifier = both_keys();
    for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
        let signed = signer(hash).sign_canned(URL, T0, t(0)).unwrap();
        for grant in [
            query_grant(&signed.query()).unwrap(),
            cookie_grant(&signed.cookies()),
        ] {
            assert_eq!(grant.expires, Some(T0));
            assert_eq!(grant.hash, hash);
            assert_eq!(verifier.check(URL, &grant, T0 - 1, None), Ok(()));
            assert_eq!(
                verifier.check(URL, &grant, T0 - 1, ip("2001:db8::1")),
                Ok(())
            );
            assert_eq!(verifier.check(URL, &grant, T0, None), Err(Denied::Expired));
            // Another URL (even a prefix or the same with a query) rebuilds another policy.
            for other in [
                &URL[..URL.len() - 1],
                &format!("{URL}?a=1"),
                &format!("{URL}x"),
            ] {
                assert_eq!(
                    verifier.check(other, &grant, T0 - 1, None),
                    Err(Denied::BadSignature)
                );
            }
            // A later `Expires` than signed.
            let mut later = grant.clone();
            later.expires = Some(T0 + 3600);
            assert_eq!(
                verifier.check(URL, &later, T0 + 1, None),
                Err(Denied::BadSignature)
            );
            // The hash the signature was made with, not another.
            let mut other_hash = grant.clone();
            other_hash.hash = match hash {
                HashAlgorithm::Sha1 => HashAlgorithm::Sha256,
                HashAlgorithm::Sha256 => HashAlgorithm::Sha1,
            };
            assert_eq!(
                verifier.check(URL, &other_hash, T0 - 1, None),
                Err(Denied::BadSignature)
            );
        }
    }
}

#[test]
fn custom_grants_from_query_and_cookies() {
    let verifier = both_keys();
    let mut policy = custom(&format!("{RUN}*"));
    policy.date_greater_than = Some(T0 - 3600);
    policy.ip_address = Some("198.51.100.0/24".into());
    let inside = ip("198.51.100.77");
    let file = format!("{RUN}checkpoints/step-100.bin?response-content-disposition=attachment");
    for signer in [signer(HashAlgorithm::Sha1), signer(HashAlgorithm::Sha256)] {
        let signed = signer.sign_custom(policy.clone(), t(0)).unwrap();
        for grant in [
            query_grant(&signed.query()).unwrap(),
            cookie_grant(&signed.cookies()),
        ] {
            assert_eq!(
                grant.policy_b64.as_deref(),
                Some(signed.policy_b64.as_str())
            );
            assert_eq!(verifier.check(&file, &grant, T0 - 1, inside), Ok(()));
            assert_eq!(verifier.check(RUN, &grant, T0 - 1, inside), Ok(()));
            assert_eq!(
                verifier.check(&file, &grant, T0, inside),
                Err(Denied::Expired)
            );
            assert_eq!(
                verifier.check(&file, &grant, T0 - 3600, inside),
                Err(Denied::NotYetValid)
            );
            assert_eq!(verifier.check(&file, &grant, T0 - 3599, inside), Ok(()));
            assert_eq!(
                verifier.check(&file, &grant, T0 - 1, ip("198.51.101.77")),
                Err(Denied::IpAddress)
            );
            assert_eq!(
                verifier.check(&file, &grant, T0 - 1, None),
                Err(Denied::IpAddress)
            );
            assert_eq!(
                verifier.check(&file, &grant, T0 - 1, ip("2001:db8::1")),
                Err(Denied::IpAddress)
            );
            let outside = "https://d111111abcdef8.cloudfront.net/tenants/acme/prod/runs/run-8/x";
            assert_eq!(
                verifier.check(outside, &grant, T0 - 1, inside),
                Err(Denied::Resource)
            );
            let other_tenant =
                "https://d111111abcdef8.cloudfront.net/tenants/evil/prod/runs/run-7/x";
            assert_eq!(
                verifier.check(other_tenant, &grant, T0 - 1, inside),
                Err(Denied::Resource)
            );
        }
    }
}

#[test]
fn custom_grants_with_ipv6_and_question_mark() {
    let verifier = both_keys();
    let mut policy = custom("https://d/v/part-??.bin");
    policy.ip_address = Some("2001:db8:1234::/48".into());
    let signed = signer(HashAlgorithm::Sha256)
        .sign_custom(policy, t(0))
        .unwrap();
    let grant = query_grant(&signed.query()).unwrap();
    let v6 = ip("2001:db8:1234:5::9");
    assert_eq!(
        verifier.check("https://d/v/part-07.bin", &grant, 0, v6),
        Ok(())
    );
    assert_eq!(
        verifier.check("https://d/v/part-7.bin", &grant, 0, v6),
        Err(Denied::Resource)
    );
    assert_eq!(
        verifier.check("https://d/v/part-007.bin", &grant, 0, v6),
        Err(Denied::Resource)
    );
    assert_eq!(
        verifier.check("https://d/v/part-07.bin", &grant, 0, ip("2001:db8:1235::9")),
        Err(Denied::IpAddress)
    );
    assert_eq!(
        verifier.check("https://d/v/part-07.bin", &grant, 0, ip("192.0.2.1")),
        Err(Denied::IpAddress)
    );
}

#[test]
fn tampering_is_caught() {
    let verifier = both_keys();
    let signer = signer(HashAlgorithm::Sha1);
    let signed = signer
        .sign_custom(custom(&format!("{RUN}*")), t(0))
        .unwrap();
    let file = format!("{RUN}a.bin");
    let good = query_grant(&signed.query()).unwrap();
    assert_eq!(verifier.check(&file, &good, 0, None), Ok(()));

    // A policy that reaches further (another resource, a later expiry), re-encoded.
    for tampered in [custom("*"), custom(&format!("{RUN}*")).with_expiry(T0 + 1)] {
        let mut grant = good.clone();
        grant.policy_b64 = Some(encode(tampered.to_json().as_bytes()));
        assert_eq!(
            verifier.check(&file, &grant, 0, None),
            Err(Denied::BadSignature)
        );
    }
    // The same policy with whitespace is other bytes.
    let mut grant = good.clone();
    let spaced = custom(&format!("{RUN}*")).to_json().replace(",", ", ");
    grant.policy_b64 = Some(encode(spaced.as_bytes()));
    assert_eq!(
        verifier.check(&file, &grant, 0, None),
        Err(Denied::BadSignature)
    );

    // A changed signature character.
    let mut grant = good.clone();
    let mut sig: Vec<char> = grant.signature.chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    grant.signature = sig.into_iter().collect();
    assert_eq!(
        verifier.check(&file, &grant, 0, None),
        Err(Denied::BadSignature)
    );
    // Another signature of the right shape, and the other key's signature of this policy.
    let mut grant = good.clone();
    grant.signature = signer.sign_canned(&file, T0, t(0)).unwrap().signature;
    assert_eq!(
        verifier.check(&file, &grant, 0, None),
        Err(Denied::BadSignature)
    );
    let mut grant = good.clone();
    grant.signature = encode(&ec(EC_ID, 0).sign(
        custom(&format!("{RUN}*")).to_json().as_bytes(),
        HashAlgorithm::Sha1,
    ));
    assert_eq!(
        verifier.check(&file, &grant, 0, None),
        Err(Denied::BadSignature)
    );
    grant.key_pair_id = EC_ID.into();
    assert_eq!(
        verifier.check(&file, &grant, 0, None),
        Ok(()),
        "the EC key's own signature"
    );

    // An unknown key pair id.
    let mut grant = good.clone();
    grant.key_pair_id = "KUNKNOWN".into();
    assert_eq!(
        verifier.check(&file, &grant, 0, None),
        Err(Denied::UnknownKey)
    );
    let only_ec = Verifier::new(vec![ec(EC_ID, 0).verifying_key()]);
    assert_eq!(
        only_ec.check(&file, &good, 0, None),
        Err(Denied::UnknownKey)
    );
}

impl Policy {
    fn with_expiry(mut self, t: i64) -> Self {
        self.date_less_than = t;
        self
    }
}

#[test]
fn malformed_grants_are_refused_as_malformed() {
    let verifier = both_keys();
    let signed = signer(HashAlgorithm::Sha1)
        .sign_custom(custom("*"), t(0))
        .unwrap();
    let canned = signer(HashAlgorithm::Sha1)
        .sign_canned(URL, T0, t(0))
        .unwrap();
    let (p, s) = (signed.policy_b64.as_str(), signed.signature.as_str());
    let standard_b64 = |s: &str| s.replace('-', "+").replace('~', "/").replace('_', "=");
    assert_ne!(standard_b64(s), s);
    let not_json = encode(b"not json");
    let no_date = encode(br#"{"Statement":[{"Resource":"*","Condition":{}}]}"#);
    let queries = [
        format!("Policy={p}&Signature={s}"),
        format!("Policy={p}&Signature=&Key-Pair-Id={RSA_ID}"),
        format!("Policy={p}&Signature={s}&Key-Pair-Id="),
        format!("Signature={s}&Key-Pair-Id={RSA_ID}"),
        format!("Expires={T0}&Policy={p}&Signature={s}&Key-Pair-Id={RSA_ID}"),
        format!(
            "Expires=soon&Signature={}&Key-Pair-Id={RSA_ID}",
            canned.signature
        ),
        format!(
            "Expires=-1&Signature={}&Key-Pair-Id={RSA_ID}",
            canned.signature
        ),
        format!(
            "Expires=+{T0}&Signature={}&Key-Pair-Id={RSA_ID}",
            canned.signature
        ),
        format!(
            "Expires=99999999999999999999&Signature={}&Key-Pair-Id={RSA_ID}",
            canned.signature
        ),
        format!("Policy={p}&Signature={s}&Key-Pair-Id={RSA_ID}&Hash-Algorithm=MD5"),
        format!("Policy={p}&Signature={s}&Key-Pair-Id={RSA_ID}&Signature={s}"),
        format!("Policy={p}&Policy={p}&Signature={s}&Key-Pair-Id={RSA_ID}"),
        format!("Policy={p}&Signature={s}&Key-Pair-Id={RSA_ID}&Key-Pair-Id={RSA_ID}"),
        format!("Policy={p}!&Signature={s}&Key-Pair-Id={RSA_ID}"),
        // The standard base64 alphabet instead of CloudFront's.
        format!(
            "Policy={p}&Signature={}&Key-Pair-Id={RSA_ID}",
            standard_b64(s)
        ),
        format!("Policy={not_json}&Signature={s}&Key-Pair-Id={RSA_ID}"),
        format!("Policy={no_date}&Signature={s}&Key-Pair-Id={RSA_ID}"),
        format!("Policy=&Signature={s}&Key-Pair-Id={RSA_ID}"),
        format!("Policy={p}&Signature={s}=&Key-Pair-Id={RSA_ID}"),
        format!("Policy={p}&Signature=%41%41&Key-Pair-Id={RSA_ID}"),
    ];
    for q in &queries {
        let grant = query_grant(q).unwrap();
        assert_eq!(
            verifier.check("https://d/x", &grant, 0, None),
            Err(Denied::Malformed),
            "{q}"
        );
    }
    // The valid query for contrast, and no signature at all.
    let q = format!("Policy={p}&Signature={s}&Key-Pair-Id={RSA_ID}");
    assert_eq!(
        verifier.check("https://d/x", &query_grant(&q).unwrap(), 0, None),
        Ok(())
    );
    assert_eq!(
        query_grant(&format!("Policy={p}&Key-Pair-Id={RSA_ID}")),
        None
    );
    assert_eq!(query_grant("a=b&c=d"), None);
    assert_eq!(Grant::from_query([]), None);
    assert_eq!(Grant::from_cookies([("CloudFront-Policy", p)]), None);
    // Hash-Algorithm is case-insensitive; other parameters are ignored.
    let q = format!("a=1&Policy={p}&Signature={s}&Key-Pair-Id={RSA_ID}&Hash-Algorithm=sha1&z=2");
    assert_eq!(query_grant(&q).unwrap().hash, HashAlgorithm::Sha1);
    assert_eq!(
        verifier.check("https://d/x", &query_grant(&q).unwrap(), 0, None),
        Ok(())
    );
}

#[test]
fn cookies_quoted_repeated_and_unrelated() {
    let verifier = both_keys();
    let signed = signer(HashAlgorithm::Sha256)
        .sign_custom(custom("*"), t(0))
        .unwrap();
    let other = signer(HashAlgorithm::Sha1)
        .sign_custom(custom("https://x/*"), t(0))
        .unwrap();
    let quoted_sig = format!("\"{}\"", signed.signature);
    let cookies = vec![
        ("session", "abc"),
        ("CloudFront-Policy", signed.policy_b64.as_str()),
        ("CloudFront-Signature", quoted_sig.as_str()),
        ("CloudFront-Key-Pair-Id", RSA_ID),
        ("CloudFront-Hash-Algorithm", "SHA256"),
        // A second set for a less specific path: the first of each counts.
        ("CloudFront-Policy", other.policy_b64.as_str()),
        ("CloudFront-Signature", other.signature.as_str()),
    ];
    let grant = Grant::from_cookies(cookies).unwrap();
    assert_eq!(grant.signature, signed.signature);
    assert_eq!(grant.hash, HashAlgorithm::Sha256);
    assert_eq!(verifier.check("https://d/x", &grant, 0, None), Ok(()));
    let grant = Grant::from_cookies([
        ("CloudFront-Expires", "1"),
        ("CloudFront-Policy", signed.policy_b64.as_str()),
        ("CloudFront-Signature", signed.signature.as_str()),
        ("CloudFront-Key-Pair-Id", RSA_ID),
    ])
    .unwrap();
    assert_eq!(
        verifier.check("https://d/x", &grant, 0, None),
        Err(Denied::Malformed)
    );
}

/// Hostile input never panics: random parameters, random policies (signed or not).
#[test]
fn hostile_input_never_panics() {
    let verifier = both_keys();
    let signer = signer(HashAlgorithm::Sha1);
    let key = rsa(RSA_ID, 0);
    let mut rng = Rng(42);
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "Statement",
        "Resource",
        "Condition",
        "DateLessThan",
        "DateGreaterThan",
        "IpAddress",
        "AWS:EpochTime",
        "AWS:SourceIp",
        "1767225600",
        "-1",
        "1e400",
        "0.5",
        "null",
        "\\u0000",
        "\\ud800",
        "10.0.0.0/8",
        "::/0",
        "*",
        "?",
        "é",
    ];
    for i in 0..3000 {
        let mut doc = String::new();
        for _ in 0..rng.below(40) {
            doc.push_str(pieces[rng.below(pieces.len())]);
        }
        let _ = Policy::parse(doc.as_bytes());
        let policy_b64 = if i % 2 == 0 {
            encode(doc.as_bytes())
        } else {
            rng.string(b"AZaz09-_~+/=%&", 30)
        };
        let signature = if i % 3 == 0 {
            // A real signature over the hostile bytes: the parser then sees them too.
            encode(&key.sign(doc.as_bytes(), HashAlgorithm::Sha1))
        } else {
            rng.string(b"AZaz09-_~", 90)
        };
        let expires = rng.string(b"0123456789-+x", 21);
        let url = rng.string(b"ab/?*%\xc3", 12);
        let query = [
            ("Policy", policy_b64.as_str()),
            ("Expires", expires.as_str()),
            ("Signature", signature.as_str()),
            ("Key-Pair-Id", if i % 5 == 0 { EC_ID } else { RSA_ID }),
            ("Hash-Algorithm", ["SHA1", "SHA256", "x", ""][rng.below(4)]),
        ];
        let keep: Vec<_> = query.into_iter().filter(|_| rng.below(4) != 0).collect();
        if let Some(grant) = Grant::from_query(keep.iter().copied()) {
            let now = [i64::MIN, -1, 0, T0, i64::MAX][rng.below(5)];
            let _ = verifier.check(&url, &grant, now, ip("10.1.2.3"));
        }
        let _ = decode(&policy_b64);
        let _ = wildcard_match(&url, &doc);
    }
    let _ = signer
        .sign_custom(custom(&"*?".repeat(2000)), t(0))
        .unwrap();
    // Many stars against a long URL: quadratic at worst, not exponential.
    let started = std::time::Instant::now();
    assert!(wildcard_match(&"*a".repeat(300), &"a".repeat(5000)));
    assert!(!wildcard_match(
        &format!("{}b", "*a".repeat(300)),
        &"a".repeat(5000)
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A small deterministic generator (xorshift64) for the randomised tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn string(&mut self, alphabet: &[u8], max: usize) -> String {
        let len = self.below(max + 1);
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
