//! The signer's tests: signing keys: formats, algorithms, what CloudFront refuses.
use super::*;

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
