//! Small validated values: each `parse` is the only way to build one.
use std::fmt;

use crate::problem::{Code, Problem};

/// Why a value was refused; `code` is the stable problem code the API returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ValueError {
    pub code: Code,
    pub detail: String,
}

impl ValueError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

/// A refused value is an invalid request.
impl From<ValueError> for Problem {
    fn from(e: ValueError) -> Self {
        Problem::invalid(e.code, e.detail)
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A tenant id: `^[a-z0-9][a-z0-9_-]{0,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);
string_newtype!(TenantId);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::new(
                Code::InvalidScope,
                "X-Tenant-Id must match ^[a-z0-9][a-z0-9_-]{0,62}$",
            ))
        }
    }
}

/// An environment, one of `CAIRN_ENVS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Env(String);
string_newtype!(Env);

impl Env {
    pub fn parse(s: &str, allowed: &[String]) -> Result<Self, ValueError> {
        if allowed.iter().any(|e| e == s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::new(
                Code::InvalidScope,
                format!("X-Env must be one of: {}", allowed.join(", ")),
            ))
        }
    }
}

/// A run id: `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);
string_newtype!(RunId);

impl RunId {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && b[0].is_ascii_alphanumeric()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::new(
                Code::InvalidRunId,
                "run_id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
            ))
        }
    }
}

/// A filename: 1–255 bytes of UTF-8, no `/`, `\`, NUL or control characters, not `.` or `..`.
/// Anything else is refused, never rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filename(String);
string_newtype!(Filename);

impl Filename {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let bad = |why: &str| {
            Err(ValueError::new(
                Code::InvalidFilename,
                format!("filename {why}"),
            ))
        };
        if s.is_empty() {
            return bad("must not be empty");
        }
        if s.len() > 255 {
            return bad("must be at most 255 bytes");
        }
        if s == "." || s == ".." {
            return bad("must not be `.` or `..`");
        }
        if s.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
            return bad("must not contain `/`, `\\`, NUL or control characters");
        }
        if let Some(c) = s.chars().find(|c| is_format_or_separator(*c)) {
            return bad(&format!(
                "must not contain invisible or reordering characters (U+{:04X})",
                c as u32
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Unicode's format characters (general category Cf, Unicode 15.1) and its line and paragraph
/// separators (Zl, Zp): bidi overrides and isolates, zero-width spaces and joiners, the BOM,
/// U+2028/U+2029, tags. They are invisible or reorder what is shown, so a name holding one can
/// pass for another (`invoice\u{202E}gnp.exe` shows as `invoiceexe.png`).
fn is_format_or_separator(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// A SHA-256 digest as 64 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// Accepts 64 hex characters (either case).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let mut out = [0u8; 32];
        if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(ValueError::new(
                Code::InvalidSha256,
                "sha256 must be 64 hexadecimal characters",
            ));
        }
        Ok(Self(out))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A declared object size: a non-negative JSON integer no larger than `CAIRN_MAX_UPLOAD_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SizeBytes(u64);

impl SizeBytes {
    /// Parses from raw JSON so that strings, floats and negatives get a precise error.
    pub fn parse(v: &serde_json::Value, max: u64) -> Result<Self, ValueError> {
        let n = match v {
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        };
        match n {
            None => Err(ValueError::new(
                Code::InvalidSize,
                "size_bytes must be a non-negative integer",
            )),
            Some(n) if n > max => Err(ValueError::new(
                Code::SizeTooLarge,
                format!("size_bytes {n} exceeds the limit of {max} bytes"),
            )),
            Some(n) => Ok(Self(n)),
        }
    }

    pub fn new_unchecked(n: u64) -> Self {
        Self(n)
    }

    pub fn get(&self) -> u64 {
        self.0
    }

    /// For the catalog's BIGINT columns; sizes are bounded by the upload limit, far below i64::MAX.
    pub fn as_i64(&self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

/// A media type such as `image/png` or `text/plain; charset=utf-8`, lowercased, at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType(String);
string_newtype!(ContentType);

impl ContentType {
    /// The type without parameters: `text/html` of `text/html; charset=utf-8`.
    pub fn essence(&self) -> &str {
        self.0.split(';').next().unwrap_or_default().trim()
    }

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let bad = || {
            Err(ValueError::new(
                Code::InvalidContentType,
                "content_type must be a media type like `image/png`",
            ))
        };
        if s.is_empty() || s.len() > 255 || !s.is_ascii() || s.chars().any(|c| c.is_control()) {
            return bad();
        }
        let essence = s.split(';').next().unwrap_or_default().trim();
        let token = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
        };
        match essence.split_once('/') {
            Some((ty, sub)) if token(ty) && token(sub) => Ok(Self(s.trim().to_ascii_lowercase())),
            _ => bad(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames() {
        for ok in [
            "a.png",
            "my photo (1).JPG",
            "файл.txt",
            "日本語 ファイル.png",
            "emoji 🎉.png",
            "café\u{301}.png",
            "..a",
            "a..",
            &"x".repeat(255),
        ] {
            assert!(Filename::parse(ok).is_ok(), "{ok:?} should be accepted");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            "\u{7f}",
            &"x".repeat(256),
            "invoice\u{202E}gnp.exe",
            "a\u{2066}b\u{2069}.png",
            "zero\u{200B}width.png",
            "join\u{200D}er.png",
            "\u{FEFF}bom.png",
            "line\u{2028}sep.png",
            "para\u{2029}sep.png",
            "soft\u{AD}hyphen.png",
            "tag\u{E0041}.png",
            "arabic\u{61C}mark.png",
        ] {
            assert_eq!(
                Filename::parse(bad).unwrap_err().code,
                Code::InvalidFilename,
                "{bad:?}"
            );
        }
        // 255 bytes is about bytes, not characters.
        assert!(Filename::parse(&"é".repeat(128)).is_err());
    }

    #[test]
    fn tenants() {
        assert!(TenantId::parse("acme").is_ok());
        assert!(TenantId::parse("a-b_c9").is_ok());
        for bad in ["", "Acme", "-acme", "acme!", &"a".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn run_ids() {
        for ok in ["r1", "Run.2026-11-23_a", &"a".repeat(128)] {
            assert!(RunId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "-r", ".r", "r/1", "r 1", "r..\\x", &"a".repeat(129)] {
            assert_eq!(
                RunId::parse(bad).unwrap_err().code,
                Code::InvalidRunId,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sizes() {
        let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(SizeBytes::parse(&j("12"), 100).unwrap().get(), 12);
        assert_eq!(SizeBytes::parse(&j("0"), 100).unwrap().get(), 0);
        assert_eq!(
            SizeBytes::parse(&j("-1"), 100).unwrap_err().code,
            Code::InvalidSize
        );
        assert_eq!(
            SizeBytes::parse(&j("1.5"), 100).unwrap_err().code,
            Code::InvalidSize
        );
        assert_eq!(
            SizeBytes::parse(&j("\"12\""), 100).unwrap_err().code,
            Code::InvalidSize
        );
        assert_eq!(
            SizeBytes::parse(&j("101"), 100).unwrap_err().code,
            Code::SizeTooLarge
        );
    }

    #[test]
    fn sha256_and_content_type() {
        let h = "A".repeat(64);
        assert_eq!(Sha256::parse(&h).unwrap().to_hex(), "a".repeat(64));
        assert!(Sha256::parse("abc").is_err());
        assert!(Sha256::parse(&"g".repeat(64)).is_err());
        assert_eq!(
            ContentType::parse("Image/PNG").unwrap().as_str(),
            "image/png"
        );
        assert!(ContentType::parse("text/plain; charset=utf-8").is_ok());
        for bad in ["", "png", "image/", "/png", "image png/x", "a/b\r\n"] {
            assert!(ContentType::parse(bad).is_err(), "{bad:?}");
        }
    }
}
