//! Artifact kinds, the content types each allows (DESIGN §5), and the first-bytes check that keeps
//! a spoofed upload from being served under a trusted media type.
use std::fmt;

use super::{ContentType, ValueError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Preview,
    Replay,
    Audit,
    Image,
    Video,
    Audio,
    Bundle,
}

const IMAGE: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];
const JSON: &[&str] = &["application/json"];

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Preview,
        Kind::Replay,
        Kind::Audit,
        Kind::Image,
        Kind::Video,
        Kind::Audio,
        Kind::Bundle,
    ];

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ValueError::new(
                    "invalid_kind",
                    "kind must be one of preview, replay, audit, image, video, audio, bundle",
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Preview => "preview",
            Kind::Replay => "replay",
            Kind::Audit => "audit",
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Bundle => "bundle",
        }
    }

    /// The media types (without parameters) this kind accepts.
    pub fn content_types(self) -> &'static [&'static str] {
        match self {
            Kind::Preview | Kind::Image => IMAGE,
            Kind::Replay | Kind::Audit => JSON,
            Kind::Video => &["video/mp4", "video/webm"],
            Kind::Audio => &["audio/mpeg", "audio/wav", "audio/ogg"],
            Kind::Bundle => &["application/zip", "text/html"],
        }
    }

    /// Refuses a content type the kind does not allow (400 `unsupported_content_type`).
    pub fn check_content_type(self, ct: &ContentType) -> Result<(), ValueError> {
        if self.content_types().contains(&ct.essence()) {
            Ok(())
        } else {
            Err(ValueError::new(
                "unsupported_content_type",
                format!(
                    "kind `{}` accepts {}, not `{}`",
                    self.as_str(),
                    self.content_types().join(", "),
                    ct.essence()
                ),
            ))
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        match s {
            "private" => Ok(Self::Private),
            "public" => Ok(Self::Public),
            _ => Err(ValueError::new(
                "invalid_visibility",
                "visibility must be `private` or `public`",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => entity::blob::VISIBILITY_PRIVATE,
            Self::Public => entity::blob::VISIBILITY_PUBLIC,
        }
    }
}

/// How many leading bytes [`sniff`] needs.
pub const SNIFF_LEN: usize = 16;

/// Whether `head` (the first bytes of the content, up to [`SNIFF_LEN`]) is what `content_type`
/// claims. Types with a binary signature are checked; text types (JSON, HTML) are not.
pub fn sniff(content_type: &ContentType, head: &[u8]) -> bool {
    let at = |off: usize, sig: &[u8]| head.get(off..off + sig.len()) == Some(sig);
    match content_type.essence() {
        "image/png" => at(0, b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => at(0, b"\xff\xd8\xff"),
        "image/gif" => at(0, b"GIF87a") || at(0, b"GIF89a"),
        "image/webp" => at(0, b"RIFF") && at(8, b"WEBP"),
        "video/mp4" => at(4, b"ftyp"),
        "video/webm" => at(0, b"\x1a\x45\xdf\xa3"),
        // An ID3 tag, or an MPEG audio frame sync (11 set bits).
        "audio/mpeg" => at(0, b"ID3") || (head.len() >= 2 && head[0] == 0xff && head[1] >= 0xe0),
        "audio/wav" => at(0, b"RIFF") && at(8, b"WAVE"),
        "audio/ogg" => at(0, b"OggS"),
        // A local file header, or the end record of an empty archive.
        "application/zip" => at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06"),
        _ => true,
    }
}

/// Whether [`sniff`] checks this type at all.
pub fn has_signature(content_type: &ContentType) -> bool {
    !sniff(content_type, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(s: &str) -> ContentType {
        ContentType::parse(s).unwrap()
    }

    #[test]
    fn kinds_and_types() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()).unwrap(), k);
            for t in k.content_types() {
                assert!(k.check_content_type(&ct(t)).is_ok());
            }
        }
        assert!(Kind::Bundle
            .check_content_type(&ct("text/html; charset=utf-8"))
            .is_ok());
        let e = Kind::Image
            .check_content_type(&ct("image/svg+xml"))
            .unwrap_err();
        assert_eq!(e.code, "unsupported_content_type");
        assert!(Kind::Preview.check_content_type(&ct("video/mp4")).is_err());
        assert_eq!(Kind::parse("Image").unwrap_err().code, "invalid_kind");
    }

    #[test]
    fn signatures() {
        let cases: &[(&str, &[u8])] = &[
            ("image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            ("image/jpeg", b"\xff\xd8\xff\xe0\0\x10JFIF"),
            ("image/gif", b"GIF89a\x01\0"),
            ("image/webp", b"RIFF\x24\0\0\0WEBPVP8 "),
            ("video/mp4", b"\0\0\0\x18ftypmp42"),
            ("video/webm", b"\x1a\x45\xdf\xa3\x9f"),
            ("audio/mpeg", b"ID3\x04\0"),
            ("audio/mpeg", b"\xff\xfb\x90\x64"),
            ("audio/wav", b"RIFF\x24\0\0\0WAVEfmt "),
            ("audio/ogg", b"OggS\0\x02"),
            ("application/zip", b"PK\x03\x04\x14\0"),
        ];
        for (t, good) in cases {
            assert!(sniff(&ct(t), good), "{t} should accept its signature");
            assert!(!sniff(&ct(t), b"<html>not media"), "{t} should refuse text");
            assert!(!sniff(&ct(t), b""), "{t} should refuse empty content");
            assert!(has_signature(&ct(t)));
        }
        // A WAV is not a WebP even though both are RIFF.
        assert!(!sniff(&ct("image/webp"), b"RIFF\x24\0\0\0WAVEfmt "));
        assert!(sniff(&ct("text/html"), b"anything"));
        assert!(!has_signature(&ct("application/json")));
    }
}
