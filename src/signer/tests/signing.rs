//! The signer's tests: the signer: rotation, one operation per policy, query and cookie layout.
use super::*;

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
