//! How stored content is delivered to a browser: which types are passive, whether a download
//! shows inline, and the `Content-Disposition` that names it.
/// Types a browser only displays (images but SVG, audio, video, JSON) or only downloads
/// (`application/octet-stream`). Anything else may be active content: HTML, SVG and XML run
/// scripts, and other text types can be read as such.
pub fn is_passive(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (ty, sub) = essence.split_once('/').unwrap_or(("", ""));
    match ty {
        "image" => !sub.contains("svg") && !sub.contains("xml"),
        "audio" | "video" => true,
        "application" => sub == "json" || sub == "octet-stream",
        _ => false,
    }
}

/// Whether a download shows in the browser (`inline`) rather than being saved (DESIGN §6):
/// passive types always, active ones where they are served sandboxed (by Cairn, or by the CDN's
/// response headers policy), never when the caller asked for a download.
pub fn shows_inline(content_type: &str, sandboxed: bool, download: bool) -> bool {
    !download && (sandboxed || is_passive(content_type))
}

/// `inline` or `attachment`, with an ASCII fallback name and the exact UTF-8 name (RFC 6266 /
/// RFC 8187).
pub fn content_disposition(filename: &str, inline: bool) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(filename, RFC8187);
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~".
const RFC8187: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[cfg(test)]
mod tests {
    #[test]
    fn disposition_keeps_the_real_name() {
        assert_eq!(
            super::content_disposition("résumé \"1\".pdf", false),
            "attachment; filename=\"r_sum_ _1_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.pdf"
        );
        assert_eq!(
            super::content_disposition("a.png", true),
            "inline; filename=\"a.png\"; filename*=UTF-8''a.png"
        );
    }

    #[test]
    fn only_display_only_types_are_passive() {
        use super::{is_passive, shows_inline};
        for t in [
            "image/png",
            "image/jpeg",
            "IMAGE/WEBP",
            "video/mp4",
            "audio/ogg",
            "application/json",
            "application/json; charset=utf-8",
            "application/octet-stream",
        ] {
            assert!(is_passive(t), "{t}");
            assert!(shows_inline(t, false, false), "{t}");
            assert!(
                !shows_inline(t, true, true),
                "{t}: a download was asked for"
            );
        }
        for t in [
            "text/html",
            "text/html; charset=utf-8",
            "image/svg+xml",
            "application/xhtml+xml",
            "application/xml",
            "text/xml",
            "text/plain",
            "application/pdf",
            "application/javascript",
            "multipart/x-mixed-replace",
            "",
            "nonsense",
        ] {
            assert!(!is_passive(t), "{t}");
            assert!(!shows_inline(t, false, false), "{t}: unsandboxed");
            assert!(shows_inline(t, true, false), "{t}: sandboxed");
        }
    }
}
