//! The signer's tests: botocore's reference vectors: policies, URLs, cookies and signatures byte for byte.
use super::*;

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
