//! Artifact kinds, the content types each allows (DESIGN §5), and the first-bytes check that keeps
//! a spoofed upload from being served under a trusted media type.
use std::fmt;

use super::{ContentType, ValueError};
use crate::problem::Code;

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
                    Code::InvalidKind,
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
                Code::UnsupportedContentType,
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
                Code::InvalidVisibility,
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

/// Spellings real tools use for the types the kinds allow, and the type each means. An artifact
/// declared with one is stored under the canonical name.
const ALIASES: &[(&str, &str)] = &[
    ("image/jpg", "image/jpeg"),
    ("image/pjpeg", "image/jpeg"),
    ("image/x-png", "image/png"),
    ("audio/mp3", "audio/mpeg"),
    ("audio/x-mp3", "audio/mpeg"),
    ("audio/mpeg3", "audio/mpeg"),
    ("audio/x-mpeg", "audio/mpeg"),
    ("audio/x-wav", "audio/wav"),
    ("audio/wave", "audio/wav"),
    ("audio/vnd.wave", "audio/wav"),
    ("audio/x-ogg", "audio/ogg"),
    ("video/x-m4v", "video/mp4"),
    ("video/m4v", "video/mp4"),
    ("application/x-zip-compressed", "application/zip"),
    ("application/x-zip", "application/zip"),
];

/// `ct` under its canonical name when it is an alias (`image/jpg` → `image/jpeg`), with its
/// parameters; otherwise `ct` itself.
pub fn canonical(ct: ContentType) -> ContentType {
    let Some((_, canon)) = ALIASES.iter().find(|(alias, _)| *alias == ct.essence()) else {
        return ct;
    };
    let params = ct.as_str().split_once(';').map(|(_, p)| p);
    let spelled = match params {
        Some(p) => format!("{canon};{p}"),
        None => (*canon).to_owned(),
    };
    ContentType::parse(&spelled).unwrap_or(ct)
}

/// The image type a file name's extension says (`.png`, `.jpg`/`.jpeg`, `.webp`, `.gif`).
pub fn image_type_of(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "webp" => Some("image/webp"),
        "gif" => Some("image/gif"),
        _ => None,
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
    fn aliases_are_stored_under_their_canonical_names() {
        for (alias, canon) in [
            ("image/jpg", "image/jpeg"),
            ("Image/JPG", "image/jpeg"),
            ("audio/mp3", "audio/mpeg"),
            ("audio/x-wav", "audio/wav"),
            ("audio/wave", "audio/wav"),
            ("audio/vnd.wave", "audio/wav"),
            ("video/x-m4v", "video/mp4"),
            ("image/png", "image/png"),
            (
                "application/json; charset=utf-8",
                "application/json; charset=utf-8",
            ),
            ("audio/mp3; rate=44100", "audio/mpeg; rate=44100"),
        ] {
            assert_eq!(canonical(ct(alias)).as_str(), canon, "{alias}");
        }
        for (kind, alias) in [
            (Kind::Image, "image/jpg"),
            (Kind::Audio, "audio/mp3"),
            (Kind::Audio, "audio/x-wav"),
            (Kind::Video, "video/x-m4v"),
            (Kind::Bundle, "application/x-zip-compressed"),
        ] {
            assert!(
                kind.check_content_type(&canonical(ct(alias))).is_ok(),
                "{alias}"
            );
        }
        assert_eq!(image_type_of("frame-0001.PNG"), Some("image/png"));
        assert_eq!(image_type_of("a.jpeg"), Some("image/jpeg"));
        assert_eq!(image_type_of("render"), None);
        assert_eq!(image_type_of("a.svg"), None);
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
