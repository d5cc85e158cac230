//! The signer's tests: the verifier: grants from queries and cookies, tampering, hostile input.
use super::*;

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
