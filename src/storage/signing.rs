//! HMAC-SHA256 signatures for the local backend's `/o/` URLs. Each signature binds a method and
//! every fact the URL grants (key, expiry, content type, size, checksum, download filename), so
//! changing any of them invalidates it. Parts never contain a newline (keys, filenames and
//! content types refuse control characters), so joining them with `\n` is unambiguous.
use hmac::{Hmac, Mac};

type HmacSha256 = Hmac<sha2::Sha256>;

#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(****)")
    }
}

impl UrlSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, parts: &[&str]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(b"\n");
            }
            mac.update(p.as_bytes());
        }
        mac
    }

    /// Hex signature of the newline-joined `parts`.
    pub fn sign(&self, parts: &[&str]) -> String {
        hex::encode(self.mac(parts).finalize().into_bytes())
    }

    /// Constant-time check of a hex signature.
    pub fn verify(&self, parts: &[&str], sig_hex: &str) -> bool {
        let Ok(sig) = hex::decode(sig_hex) else {
            return false;
        };
        self.mac(parts).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_every_part() {
        let s = UrlSigner::new(b"k");
        let sig = s.sign(&["GET", "a/b", "100"]);
        assert!(s.verify(&["GET", "a/b", "100"], &sig));
        assert!(!s.verify(&["GET", "a/b", "101"], &sig));
        assert!(!s.verify(&["PUT", "a/b", "100"], &sig));
        assert!(!UrlSigner::new(b"other").verify(&["GET", "a/b", "100"], &sig));
        assert!(!s.verify(&["GET", "a/b", "100"], "zz"));
    }
}
