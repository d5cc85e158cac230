//! CDN egress per tenant and env, read from CloudFront standard access logs (DESIGN §3, §8).
//!
//! [`parse`] reads one log file of CloudFront's *standard logging (legacy)* to S3, as the
//! CloudFront Developer Guide ("Standard log file format", "Log file fields") describes it:
//! - gzip-compressed ([`parse`] also takes it already decompressed, and reads every gzip member);
//! - W3C extended log format: a `#Version: 1.0` line, a `#Fields:` line naming the fields
//!   (33 today, `date time x-edge-location sc-bytes c-ip … cs-uri-stem …`), then one
//!   tab-separated record per request, `-` for an empty value, not in time order;
//! - `date` is `YYYY-MM-DD` in UTC; `sc-bytes` is every byte sent to the viewer, headers included;
//! - field values are escaped by CloudFront: bytes 0–32 and 127–255 and
//!   `` < > " # % { } | \ ^ ~ [ ] ` ' `` become `%XX`. The escaping is applied to the path *as the
//!   viewer sent it*, which is already percent-encoded, so a key's space is logged as `%2520`
//!   and `é` as `%25C3%25A9`: [`attribute`] decodes `cs-uri-stem` twice to get the object key.
//!
//! Columns are found by their names in `#Fields:` (a later `#Fields:` line replaces them), so
//! added or reordered fields do not break the parser. Log files are recognised by where they are,
//! `<prefix><distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz` directly under the configured prefix
//! (UTC hour of the requests; see [`is_log_file`]), never by their name alone: a tenant's upload
//! can have any name, but it lives under `tenants/`, which the prefix never covers. CloudFront may
//! deliver entries up to 24 hours late, into the file of the hour they occurred, so a day's
//! totals settle a day later; logs are best effort, not billing.
//!
//! What counts: every data line is one request, whatever its status (errors, `304`, aborted
//! `000` too), with its `sc-bytes`, on its `date`. A line is attributed when `cs-uri-stem` is
//! `/` + a Cairn object key (DESIGN §3) with a valid tenant and one of the configured envs;
//! anything else is skipped and counted: other paths, a bad tenant, an unknown env, a `#` line
//! other than `#Version`/`#Fields`, a line with fewer fields than `#Fields` names, or an
//! unparsable `date` or `sc-bytes`. Blank lines are ignored. A line whose `sc-bytes` is a number
//! no response can be ([`MAX_SC_BYTES`]), or would take the file's totals past what a catalog
//! counter holds (`i64::MAX`), is *rejected*: counted apart from the skipped ones and never added.
//!
//! The text is read as a stream, line by line: memory stays at one line ([`MAX_LINE_BYTES`]) plus
//! the decoder's buffers, whatever the file decompresses to. A file that cannot be read as a
//! whole is an error ([`LogError`]): not gzip, not UTF-8, larger than the caller's bound once
//! decompressed, a line longer than [`MAX_LINE_BYTES`], or data before any `#Fields` line.
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
};

use chrono::NaiveDate;
use flate2::read::MultiGzDecoder;
use percent_encoding::{percent_decode, percent_decode_str};

/// Requests and bytes one tenant+env was served on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    pub requests: u64,
    pub bytes: u64,
}

/// What one log file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Per (day, tenant, env).
    pub served: BTreeMap<(NaiveDate, String, String), Served>,
    /// Data lines read (attributed + skipped + rejected).
    pub lines: u64,
    /// Lines not attributed to a tenant and env.
    pub skipped: u64,
    /// Lines refused for an absurd `sc-bytes`, or for totals past `i64::MAX`: never added.
    pub rejected: u64,
    /// Requests attributed, over every entry of `served` (at most `i64::MAX`).
    pub requests: u64,
    /// Their bytes (at most `i64::MAX`, so every entry and every sum of them fits a counter).
    pub bytes: u64,
}

/// A log file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("CloudFront log is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("CloudFront log is larger than {max_bytes} bytes uncompressed")]
    TooLarge { max_bytes: u64 },
    #[error("CloudFront log line {line} is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: usize },
    #[error("CloudFront log is not UTF-8 text: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("CloudFront log has a data line (line {line}) before any #Fields line")]
    NoFields { line: usize },
    #[error("CloudFront log #Fields line has no `{0}` field")]
    MissingField(&'static str),
}

/// The longest line read, without its line end. CloudFront's records are a few hundred bytes to
/// a few KiB (its URL, query, user agent and cookie fields are bounded); a longer line is not a
/// CloudFront record, and the file fails as a whole.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The largest `sc-bytes` a record can carry: the largest S3 object (5 TiB) plus 1 MiB for the
/// response headers, far more than any header block CloudFront sends. A larger value is no
/// response CloudFront served: its line is rejected.
pub const MAX_SC_BYTES: u64 = (5 << 40) + (1 << 20);

/// The largest total a file may add to a counter: what a catalog counter (`BIGINT`) holds.
const COUNTER_MAX: u64 = i64::MAX.unsigned_abs();

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decompressed bytes buffered at a time.
const READ_BUFFER: usize = 64 << 10;

/// Reads one log file (gzipped, every member, or plain) and totals its requests per (day, tenant,
/// env). `envs` are the configured envs; `max_bytes` bounds the text once decompressed: past it
/// the file is refused without decompressing further, so a gzip bomb costs at most `max_bytes`
/// of decompression and one line of memory.
pub fn parse(raw: &[u8], envs: &[String], max_bytes: u64) -> Result<Parsed, LogError> {
    if raw.starts_with(&GZIP_MAGIC) {
        let text = BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(raw));
        parse_text(text, envs, max_bytes)
    } else {
        parse_text(raw, envs, max_bytes)
    }
}

/// [`parse`] of a text already decompressed, read line by line.
fn parse_text(text: impl BufRead, envs: &[String], max_bytes: u64) -> Result<Parsed, LogError> {
    let mut lines = Lines::new(text, max_bytes);
    let mut parsed = Parsed::default();
    let mut columns = None;
    while let Some((number, line)) = lines.next_line()? {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if let Some(names) = line.strip_prefix("#Fields:") {
                columns = Some(Columns::from_names(names)?);
            } else if !line.starts_with("#Version:") {
                parsed.count(Line::Skipped);
            }
            continue;
        }
        let columns = columns
            .as_ref()
            .ok_or(LogError::NoFields { line: number })?;
        let fields: Vec<&str> = line.split('\t').collect();
        parsed.count(columns.request(&fields, envs));
    }
    Ok(parsed)
}

/// A text read one line at a time: each line at most [`MAX_LINE_BYTES`], `max_bytes` in all.
struct Lines<R> {
    text: R,
    line: Vec<u8>,
    /// Lines read so far.
    number: usize,
    /// Bytes read so far, line ends included.
    read: u64,
    max_bytes: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(text: R, max_bytes: u64) -> Self {
        Self {
            text,
            line: Vec::new(),
            number: 0,
            read: 0,
            max_bytes,
        }
    }

    /// The next line without its `\n` or `\r\n`, and its number (from 1); `None` at the end.
    fn next_line(&mut self) -> Result<Option<(usize, &str)>, LogError> {
        self.line.clear();
        let mut ended = false;
        while !ended {
            let chunk = match self.text.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LogError::Gzip(e)),
            };
            if chunk.is_empty() {
                if self.line.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let newline = chunk.iter().position(|c| *c == b'\n');
            let content = &chunk[..newline.unwrap_or(chunk.len())];
            let used = newline.map_or(chunk.len(), |i| i + 1);
            self.read = self.read.saturating_add(used as u64);
            if self.read > self.max_bytes {
                return Err(LogError::TooLarge {
                    max_bytes: self.max_bytes,
                });
            }
            // One byte over the bound may be the `\r` of a `\r\n`.
            if self.line.len() + content.len() > MAX_LINE_BYTES + 1 {
                return Err(self.too_long());
            }
            self.line.extend_from_slice(content);
            self.text.consume(used);
            ended = newline.is_some();
        }
        if ended && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if self.line.len() > MAX_LINE_BYTES {
            return Err(self.too_long());
        }
        self.number += 1;
        Ok(Some((self.number, std::str::from_utf8(&self.line)?)))
    }

    fn too_long(&self) -> LogError {
        LogError::LineTooLong {
            line: self.number + 1,
        }
    }
}

/// (tenant, env) of a request path (URL-encoded as in cs-uri-stem), or None.
pub fn attribute(uri_stem: &str, envs: &[String]) -> Option<(String, String)> {
    let key = decode_stem(uri_stem)?;
    attribute_key(key.strip_prefix('/')?, envs)
}

/// (tenant, env) of an object key Cairn writes (`[public/]tenants/<t>/<env>/...`, DESIGN §3), or
/// None for any other key.
pub fn attribute_key(key: &str, envs: &[String]) -> Option<(String, String)> {
    let segments: Vec<&str> = key.split('/').collect();
    let (tenant, env, ids) = match segments.as_slice() {
        ["tenants", tenant, env, "raw", ids @ ..] if ids.len() == 2 => (*tenant, *env, ids),
        ["tenants", tenant, env, "runs", ids @ ..] if ids.len() == 4 => (*tenant, *env, ids),
        ["public", "tenants", tenant, env, "runs", ids @ ..] if ids.len() == 4 => {
            (*tenant, *env, ids)
        }
        _ => return None,
    };
    let valid = is_tenant(tenant)
        && envs.iter().any(|e| e == env)
        && ids.iter().all(|s| !s.is_empty() && *s != "." && *s != "..");
    valid.then(|| (tenant.to_owned(), env.to_owned()))
}

/// True when `key` is a CloudFront log file under `prefix` (normalised, ending in `/`): directly
/// under it, `<prefix><distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz`. Where a file is decides,
/// not its name: a key anywhere else (under `tenants/`, in a "folder" below the prefix) is not
/// one, however it is named.
pub fn is_log_file(prefix: &str, key: &str) -> bool {
    let Some(name) = key.strip_prefix(prefix) else {
        return false;
    };
    if name.contains('/') {
        return false;
    }
    let Some(name) = name.strip_suffix(".gz") else {
        return false;
    };
    // A CloudFront-side prefix without a trailing `/` runs into the distribution id (`prod-E2…`),
    // so only the last three dot-separated parts are checked.
    let mut parts = name.rsplitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(unique), Some(hour), Some(distribution)) => {
            !unique.is_empty() && !distribution.is_empty() && is_date_hour(hour)
        }
        _ => false,
    }
}

/// Where the fields [`parse`] needs are, from a `#Fields:` line.
struct Columns {
    date: usize,
    uri_stem: usize,
    sc_bytes: usize,
    /// How many fields a record has.
    count: usize,
}

/// What one data line is.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A request of a tenant+env: (day, tenant, env, bytes).
    Attributed(NaiveDate, String, String, u64),
    Skipped,
    Rejected,
}

impl Columns {
    fn from_names(names: &str) -> Result<Self, LogError> {
        let names: Vec<&str> = names.split_whitespace().collect();
        let find = |name: &'static str| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or(LogError::MissingField(name))
        };
        Ok(Self {
            date: find("date")?,
            uri_stem: find("cs-uri-stem")?,
            sc_bytes: find("sc-bytes")?,
            count: names.len(),
        })
    }

    /// What one record is. An `sc-bytes` that is not a number is skipped, as any unparsable
    /// field; a number past [`MAX_SC_BYTES`] (or past `u64`) is rejected.
    fn request(&self, fields: &[&str], envs: &[String]) -> Line {
        if fields.len() < self.count {
            return Line::Skipped;
        }
        let Ok(day) = NaiveDate::parse_from_str(fields[self.date], "%Y-%m-%d") else {
            return Line::Skipped;
        };
        let sc_bytes = fields[self.sc_bytes];
        let bytes = match sc_bytes.parse::<u64>() {
            Ok(b) if b <= MAX_SC_BYTES => b,
            Ok(_) => return Line::Rejected,
            Err(_) if !sc_bytes.is_empty() && sc_bytes.bytes().all(|c| c.is_ascii_digit()) => {
                return Line::Rejected
            }
            Err(_) => return Line::Skipped,
        };
        match attribute(fields[self.uri_stem], envs) {
            Some((tenant, env)) => Line::Attributed(day, tenant, env, bytes),
            None => Line::Skipped,
        }
    }
}

impl Parsed {
    /// Counts one data line. An attributed line whose request or bytes would take the file's
    /// totals past [`COUNTER_MAX`] is rejected instead: nothing wraps, nothing saturates.
    fn count(&mut self, line: Line) {
        self.lines += 1;
        let (day, tenant, env, bytes) = match line {
            Line::Skipped => {
                self.skipped += 1;
                return;
            }
            Line::Rejected => {
                self.rejected += 1;
                return;
            }
            Line::Attributed(day, tenant, env, bytes) => (day, tenant, env, bytes),
        };
        let within = |total: u64, more: u64| total.checked_add(more).filter(|t| *t <= COUNTER_MAX);
        let (Some(requests), Some(total)) = (within(self.requests, 1), within(self.bytes, bytes))
        else {
            self.rejected += 1;
            return;
        };
        self.requests = requests;
        self.bytes = total;
        // An entry's sums are at most the file's, which were just checked.
        let served = self.served.entry((day, tenant, env)).or_default();
        served.requests += 1;
        served.bytes += bytes;
    }
}

/// The object key path a cs-uri-stem names. The first decoding undoes CloudFront's log escaping,
/// the second the viewer's URL encoding (as S3 does); a stem without `%25` decodes the same
/// either way. None when the key is not UTF-8 (Cairn keys always are).
fn decode_stem(stem: &str) -> Option<String> {
    let as_sent: Vec<u8> = percent_decode_str(stem).collect();
    let key = percent_decode(&as_sent).decode_utf8().ok()?;
    Some(key.into_owned())
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$` (DESIGN §3).
fn is_tenant(s: &str) -> bool {
    let b = s.as_bytes();
    let lower_digit = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && lower_digit(&b[0])
        && b[1..]
            .iter()
            .all(|c| lower_digit(c) || *c == b'_' || *c == b'-')
}

/// `YYYY-MM-DD-HH`, a real date and an hour 00–23.
fn is_date_hour(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b.len() == 13
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 4 | 7 | 10) {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shape
        && NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").is_ok()
        && s[11..].parse::<u8>().is_ok_and(|h| h < 24)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{write::GzEncoder, Compression};

    use super::*;

    /// The 33 fields of the guide's example, in its order.
    const FIELDS: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
        cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) \
        x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken \
        x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version \
        fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type \
        sc-content-type sc-content-len sc-range-start sc-range-end";

    /// Where the log files for the integration tests are (see their README).
    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cloudfront-logs"
    );

    fn envs() -> Vec<String> {
        ["dev", "staging", "prod"].map(String::from).to_vec()
    }

    /// A full 33-field record in the guide's order.
    fn record(date: &str, sc_bytes: &str, stem: &str) -> String {
        [
            date,
            "21:02:31",
            "LAX1",
            sc_bytes,
            "192.0.2.100",
            "GET",
            "d111111abcdef8.cloudfront.net",
            stem,
            "200",
            "-",
            "curl/8.5.0",
            "-",
            "-",
            "Hit",
            "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
            "cdn.example.com",
            "https",
            "23",
            "0.001",
            "-",
            "TLSv1.3",
            "TLS_AES_128_GCM_SHA256",
            "Hit",
            "HTTP/2.0",
            "-",
            "-",
            "11040",
            "0.001",
            "Hit",
            "text/plain",
            "78",
            "-",
            "-",
        ]
        .join("\t")
    }

    fn log(records: &[String]) -> String {
        let mut text = format!("#Version: 1.0\n{FIELDS}\n");
        for r in records {
            text.push_str(r);
            text.push('\n');
        }
        text
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn served(
        entries: &[(&str, &str, &str, u64, u64)],
    ) -> BTreeMap<(NaiveDate, String, String), Served> {
        entries
            .iter()
            .map(|&(d, t, e, requests, bytes)| {
                (
                    (day(d), t.to_owned(), e.to_owned()),
                    Served { requests, bytes },
                )
            })
            .collect()
    }

    fn sample() -> String {
        log(&[
            record("2026-11-20", "1000", "/tenants/acme/prod/raw/a1/notes.txt"),
            record(
                "2026-11-20",
                "500",
                "/public/tenants/acme/prod/runs/r1/report/x1/index.html",
            ),
            record(
                "2026-11-21",
                "42",
                "/tenants/acme/prod/runs/r1/model/x2/weights.bin",
            ),
            record("2026-11-20", "7", "/tenants/globex/dev/raw/a2/data.csv"),
            record("2026-11-20", "612", "/favicon.ico"),
        ])
    }

    fn expected_sample() -> Parsed {
        Parsed {
            served: served(&[
                ("2026-11-20", "acme", "prod", 2, 1500),
                ("2026-11-20", "globex", "dev", 1, 7),
                ("2026-11-21", "acme", "prod", 1, 42),
            ]),
            lines: 5,
            skipped: 1,
            rejected: 0,
            requests: 4,
            bytes: 1549,
        }
    }

    #[test]
    fn parses_plain_text() {
        let parsed = parse(sample().as_bytes(), &envs(), 1 << 20).unwrap();
        assert_eq!(parsed, expected_sample());
    }

    #[test]
    fn parses_gzip_and_crlf_and_trailing_tab() {
        let gz = gzip(sample().as_bytes());
        assert_eq!(parse(&gz, &envs(), 1 << 20).unwrap(), expected_sample());
        // The guide's own example has a record ending in a tab; Windows line ends do no harm.
        let text = sample().replace('\n', "\t\r\n");
        assert_eq!(
            parse(text.as_bytes(), &envs(), 1 << 20).unwrap(),
            expected_sample()
        );
    }

    #[test]
    fn reads_every_gzip_member() {
        let first = log(&[record("2026-11-20", "10", "/tenants/acme/prod/raw/a/f")]);
        let second = record("2026-11-20", "20", "/tenants/acme/dev/raw/a/f") + "\n";
        let third = log(&[record("2026-11-20", "30", "/tenants/acme/prod/raw/a/f")]);
        let mut gz = gzip(first.as_bytes());
        gz.extend(gzip(second.as_bytes()));
        gz.extend(gzip(third.as_bytes()));
        let parsed = parse(&gz, &envs(), 1 << 20).unwrap();
        let want = served(&[
            ("2026-11-20", "acme", "dev", 1, 20),
            ("2026-11-20", "acme", "prod", 2, 40),
        ]);
        assert_eq!((parsed.served, parsed.lines, parsed.skipped), (want, 3, 0));
    }

    #[test]
    fn finds_columns_by_name() {
        let text = "#Version: 1.0\n\
            #Fields: cs-uri-stem sc-status sc-bytes time date\n\
            /tenants/acme/prod/raw/a/f\t200\t99\t01:00:00\t2026-11-20\n\
            #Fields: sc-bytes date cs-uri-stem\n\
            5\t2026-11-22\t/tenants/acme/staging/raw/a/f\n";
        let parsed = parse(text.as_bytes(), &envs(), 1 << 20).unwrap();
        let want = served(&[
            ("2026-11-20", "acme", "prod", 1, 99),
            ("2026-11-22", "acme", "staging", 1, 5),
        ]);
        assert_eq!((parsed.served, parsed.lines, parsed.skipped), (want, 2, 0));
    }

    #[test]
    fn skips_what_it_cannot_attribute() {
        let good = "/tenants/acme/prod/raw/a/f";
        let short = record("2026-11-20", "1", good)
            .rsplit_once('\t')
            .unwrap()
            .0
            .to_owned();
        let text = log(&[
            record("2026-11-20", "1", "/"),
            record("2026-11-20", "1", "/tenants/acme/nosuchenv/raw/x/y"),
            record("2026-11-20", "1", "/tenants/Acme/prod/raw/a/f"),
            record("2026-11-20", "1", "-"),
            record("20-11-2026", "1", good),
            record("2026-11-31", "1", good),
            record("2026-11-20", "-", good),
            record("2026-11-20", "-1", good),
            record("2026-11-20", "1.5", good),
            short,
            "#Remark: a comment".to_owned(),
            record("2026-11-20", "3", good),
        ]) + "\n\n";
        let parsed = parse(text.as_bytes(), &envs(), 1 << 20).unwrap();
        let want = served(&[("2026-11-20", "acme", "prod", 1, 3)]);
        assert_eq!(
            (parsed.served, parsed.lines, parsed.skipped),
            (want, 12, 11)
        );
    }

    #[test]
    fn decodes_the_stem_as_cloudfront_escapes_it() {
        let e = envs();
        let acme = Some(("acme".to_owned(), "prod".to_owned()));
        // Viewer sent `caf%C3%A9%20menu.pdf`; CloudFront logged its `%` as `%25`.
        let logged = "/tenants/acme/prod/raw/a/caf%25C3%25A9%2520menu.pdf";
        assert_eq!(
            decode_stem(logged).unwrap(),
            "/tenants/acme/prod/raw/a/café menu.pdf"
        );
        assert_eq!(attribute(logged, &e), acme);
        // Viewer sent raw UTF-8 and a space: CloudFront's escaping is the only one.
        assert_eq!(
            attribute("/tenants/acme/prod/raw/a/caf%C3%A9%20menu.pdf", &e),
            acme
        );
        // Escaped path separators and tenant characters are the key S3 sees.
        assert_eq!(attribute("/tenants%252Facme%252Fprod/raw/a/f", &e), acme);
        assert_eq!(attribute("/tenants/%2561cme/prod/raw/a/f", &e), acme);
        // A literal `%` in a filename (viewer `%25`, logged `%2525`).
        assert_eq!(decode_stem("/x/100%2525.txt").unwrap(), "/x/100%.txt");
        // A `/` inside a filename makes it another shape.
        assert_eq!(attribute("/tenants/acme/prod/raw/a/b%252Fc", &e), None);
        // Not UTF-8 once decoded.
        assert_eq!(attribute("/tenants/acme/prod/raw/a/%25FF", &e), None);
    }

    #[test]
    fn attributes_only_cairn_keys() {
        let e = envs();
        let yes = |t: &str, v: &str| Some((t.to_owned(), v.to_owned()));
        let cases: &[(&str, Option<(String, String)>)] = &[
            ("/tenants/acme/prod/raw/a/f", yes("acme", "prod")),
            ("/tenants/acme/dev/runs/r/kind/x/f", yes("acme", "dev")),
            (
                "/public/tenants/acme/staging/runs/r/kind/x/f",
                yes("acme", "staging"),
            ),
            ("/tenants/0_a-b/prod/raw/a/f", yes("0_a-b", "prod")),
            (
                &format!("/tenants/{}/prod/raw/a/f", "a".repeat(63)),
                yes(&"a".repeat(63), "prod"),
            ),
            (&format!("/tenants/{}/prod/raw/a/f", "a".repeat(64)), None),
            ("/tenants/_acme/prod/raw/a/f", None),
            ("/tenants/-acme/prod/raw/a/f", None),
            ("/tenants/ac.me/prod/raw/a/f", None),
            ("/tenants/acmé/prod/raw/a/f", None),
            ("/tenants/ACME/prod/raw/a/f", None),
            ("/tenants//prod/raw/a/f", None),
            ("/tenants/acme/qa/raw/a/f", None),
            ("/tenants/acme/PROD/raw/a/f", None),
            ("/tenants/acme/prod/raw/a", None),
            ("/tenants/acme/prod/raw/a/", None),
            ("/tenants/acme/prod/raw//f", None),
            ("/tenants/acme/prod/raw/a/..", None),
            ("/tenants/acme/prod/raw/a/f/g", None),
            ("/tenants/acme/prod/runs/r/kind/x", None),
            ("/tenants/acme/prod/runs/r/kind/x/f/g", None),
            ("/tenants/acme/prod/other/a/f", None),
            ("/tenants/acme/prod", None),
            ("/tenants/acme", None),
            ("/public/acme/prod/runs/r/kind/x/f", None),
            ("/public/tenants/acme/prod/raw/a/f", None),
            ("/public/runs/r/kind/x/f", None),
            ("tenants/acme/prod/raw/a/f", None),
            ("//tenants/acme/prod/raw/a/f", None),
            ("/", None),
            ("", None),
        ];
        for (stem, want) in cases {
            assert_eq!(&attribute(stem, &e), want, "{stem}");
        }
    }

    #[test]
    fn data_before_fields_is_an_error() {
        let text = format!("#Version: 1.0\n{}\n", record("2026-11-20", "1", "/x"));
        let err = parse(text.as_bytes(), &envs(), 1 << 20).unwrap_err();
        assert!(matches!(err, LogError::NoFields { line: 2 }), "{err}");
        let err = parse(b"#Fields: date cs-uri-stem\n", &envs(), 1 << 20).unwrap_err();
        assert!(matches!(err, LogError::MissingField("sc-bytes")), "{err}");
        // Headers only, or nothing at all: no requests.
        assert_eq!(parse(b"", &envs(), 10).unwrap(), Parsed::default());
        let headers = format!("#Version: 1.0\n{FIELDS}\n");
        assert_eq!(
            parse(headers.as_bytes(), &envs(), 1 << 20).unwrap(),
            Parsed::default()
        );
    }

    #[test]
    fn unreadable_files_are_errors() {
        let garbage = [0x00, 0xff, 0xfe, 0x80, 0x1f];
        assert!(matches!(
            parse(&garbage, &envs(), 1 << 20),
            Err(LogError::NotUtf8(_))
        ));
        let mut bad_gzip = vec![0x1f, 0x8b];
        bad_gzip.extend(b"definitely not deflate");
        assert!(matches!(
            parse(&bad_gzip, &envs(), 1 << 20),
            Err(LogError::Gzip(_))
        ));
        let gz = gzip(sample().as_bytes());
        let truncated = &gz[..gz.len() - 6];
        assert!(matches!(
            parse(truncated, &envs(), 1 << 20),
            Err(LogError::Gzip(_))
        ));
        let latin1 = format!("{FIELDS}\n2026-11-20\t1\t/tenants/acme/prod/raw/a/caf\u{e9}");
        let latin1: Vec<u8> = latin1.chars().map(|c| c as u8).collect();
        assert!(matches!(
            parse(&latin1, &envs(), 1 << 20),
            Err(LogError::NotUtf8(_))
        ));
    }

    #[test]
    fn refuses_more_than_max_bytes() {
        let text = sample();
        let size = text.len() as u64;
        assert!(parse(text.as_bytes(), &envs(), size).is_ok());
        let err = parse(text.as_bytes(), &envs(), size - 1).unwrap_err();
        assert!(matches!(err, LogError::TooLarge { max_bytes } if max_bytes == size - 1));
        let gz = gzip(text.as_bytes());
        assert!(parse(&gz, &envs(), size).is_ok());
        assert!(matches!(
            parse(&gz, &envs(), size - 1),
            Err(LogError::TooLarge { .. })
        ));
        // A gzip bomb: 16 MiB (of blank lines) in about 16 KiB, refused after 1 MiB. (Zeros
        // make one over-long line, refused sooner: see `a_gzip_bomb_is_refused_after_a_small_bound`.)
        let bomb = gzip(&vec![b'\n'; 16 << 20]);
        assert!(bomb.len() < 1 << 15);
        assert!(matches!(
            parse(&bomb, &envs(), 1 << 20),
            Err(LogError::TooLarge { .. })
        ));
    }

    #[test]
    fn recognises_log_files_by_name_and_location() {
        for (prefix, key) in [
            (
                "cdn-logs/",
                "cdn-logs/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
            ),
            (
                "cdn-logs/",
                "cdn-logs/E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz",
            ),
            ("a/b/c/", "a/b/c/E2EXAMPLE123.2026-02-28-23.x.gz"),
            // A CloudFront-side prefix without a trailing `/` runs into the distribution id.
            (
                "cdn-logs/",
                "cdn-logs/prod-E2EXAMPLE123.2026-11-20-00.a1b2c3d4.gz",
            ),
            ("my.logs/", "my.logs/E2EXAMPLE123.2024-02-29-00.a1b2c3d4.gz"),
        ] {
            assert!(is_log_file(prefix, key), "{key}");
        }
        let name_only = [
            "",
            "/",
            "E2EXAMPLE123.2026-11-20-10.a1b2c3d4",
            "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz.tmp",
            "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.txt",
            "E2EXAMPLE123.2026-11-20.a1b2c3d4.gz",
            "E2EXAMPLE123.2026-11-20-24.a1b2c3d4.gz",
            "E2EXAMPLE123.2026-13-20-10.a1b2c3d4.gz",
            "E2EXAMPLE123.2025-02-29-10.a1b2c3d4.gz",
            "E2EXAMPLE123.2026-1-20-10.a1b2c3d4.gz",
            "E2EXAMPLE123.2026-11-20-10..gz",
            ".2026-11-20-10.a1b2c3d4.gz",
            "2026-11-20-10.a1b2c3d4.gz",
            "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz/",
            "report.gz",
        ];
        for name in name_only {
            let key = format!("cdn-logs/{name}");
            assert!(!is_log_file("cdn-logs/", &key), "{key}");
        }
        // A perfect name anywhere but directly under the prefix is not a log file.
        let name = "E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz";
        for key in [
            format!("tenants/acme/prod/raw/0190f000-0000-7000-8000-000000000001/{name}"),
            format!("public/tenants/acme/prod/runs/r1/report/x1/{name}"),
            format!("cdn-logs/sub/{name}"),
            format!("cdn-logs//{name}"),
            format!("other/{name}"),
            format!("xcdn-logs/{name}"),
            format!("cdn-logs{name}"),
            name.to_owned(),
        ] {
            assert!(!is_log_file("cdn-logs/", &key), "{key}");
        }
    }

    #[test]
    fn absurd_sc_bytes_are_rejected_not_added() {
        let good = "/tenants/acme/prod/raw/a/f";
        let other = "/tenants/globex/dev/raw/a/f";
        let max = MAX_SC_BYTES.to_string();
        let past = (MAX_SC_BYTES + 1).to_string();
        let text = log(&[
            // A terabyte download and the largest possible response are plausible.
            record("2026-11-20", "1000000000000", good),
            record("2026-11-20", &max, good),
            // Past the largest S3 object plus headers, past i64, u64::MAX, past u64.
            record("2026-11-20", &past, other),
            record("2026-11-20", "10000000000000000000", other),
            record("2026-11-20", &u64::MAX.to_string(), other),
            record("2026-11-20", "99999999999999999999999999", other),
            // Absurd on a path no tenant owns: rejected too, never attributed.
            record("2026-11-20", &u64::MAX.to_string(), "/favicon.ico"),
            // Not a number at all: skipped, as before.
            record("2026-11-20", "-", good),
            record("2026-11-20", "7", other),
        ]);
        let parsed = parse(&gzip(text.as_bytes()), &envs(), 1 << 20).unwrap();
        let want = served(&[
            (
                "2026-11-20",
                "acme",
                "prod",
                2,
                1_000_000_000_000 + MAX_SC_BYTES,
            ),
            ("2026-11-20", "globex", "dev", 1, 7),
        ]);
        assert_eq!(parsed.served, want);
        assert_eq!(
            (parsed.lines, parsed.skipped, parsed.rejected),
            (9, 1, 5),
            "{parsed:?}"
        );
        assert_eq!(
            (parsed.requests, parsed.bytes),
            (3, 1_000_000_000_007 + MAX_SC_BYTES)
        );
    }

    #[test]
    fn totals_past_a_counter_reject_the_line_instead_of_wrapping() {
        let day = day("2026-11-20");
        let line = |bytes: u64| Line::Attributed(day, "acme".into(), "prod".into(), bytes);
        let mut p = Parsed::default();
        // As if the file had already added this much (1.7 million maximal lines).
        p.count(line(MAX_SC_BYTES));
        p.bytes = COUNTER_MAX - MAX_SC_BYTES;
        p.count(line(MAX_SC_BYTES));
        assert_eq!(
            (p.bytes, p.rejected),
            (COUNTER_MAX, 0),
            "exactly i64::MAX fits"
        );
        p.count(line(1));
        p.count(line(MAX_SC_BYTES));
        assert_eq!((p.bytes, p.rejected, p.lines), (COUNTER_MAX, 2, 4));
        assert_eq!(p.requests, 2);
        // Nothing past the totals reached the entry.
        let entry = p.served.values().next().unwrap();
        assert_eq!((entry.requests, entry.bytes), (2, 2 * MAX_SC_BYTES));
        // Zero bytes still fit; the request count is checked the same way.
        p.count(line(0));
        assert_eq!((p.requests, p.rejected), (3, 2));
        p.requests = COUNTER_MAX;
        p.count(line(0));
        assert_eq!((p.requests, p.rejected), (COUNTER_MAX, 3));
    }

    #[test]
    fn a_line_longer_than_the_bound_fails_the_file() {
        let good = "/tenants/acme/prod/raw/a/f";
        // The longest line allowed: a record padded in its user-agent field.
        let base = record("2026-11-20", "5", good);
        let pad = MAX_LINE_BYTES - base.len();
        let longest = base.replacen("curl/8.5.0", &format!("curl/8.5.0{}", "x".repeat(pad)), 1);
        assert_eq!(longest.len(), MAX_LINE_BYTES);
        let text = log(std::slice::from_ref(&longest));
        let parsed = parse(&gzip(text.as_bytes()), &envs(), 1 << 20).unwrap();
        assert_eq!((parsed.requests, parsed.bytes), (1, 5));
        // With `\r\n` the line end is not part of the line.
        let crlf = text.replace('\n', "\r\n");
        assert!(parse(crlf.as_bytes(), &envs(), 1 << 20).is_ok());
        // One byte more, in a plain or a gzipped file.
        let text = log(&[record("2026-11-20", "1", good), longest + "x"]);
        for raw in [text.as_bytes().to_vec(), gzip(text.as_bytes())] {
            let err = parse(&raw, &envs(), 1 << 20).unwrap_err();
            assert!(matches!(err, LogError::LineTooLong { line: 4 }), "{err}");
        }
    }

    /// Counts the bytes read through it.
    struct Counted<R> {
        inner: R,
        read: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: std::io::Read> std::io::Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.set(self.read.get() + n as u64);
            Ok(n)
        }
    }

    /// `members` gzip members of `chunk` each: a small file that decompresses to a lot.
    fn bomb(chunk: &[u8], members: usize) -> Vec<u8> {
        gzip(chunk).repeat(members)
    }

    /// Parses a gzipped `raw` as [`parse`] does, answering how many bytes were decompressed.
    fn parse_counted(raw: &[u8], max_bytes: u64) -> (Result<Parsed, LogError>, u64) {
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let decoder = Counted {
            inner: MultiGzDecoder::new(raw),
            read: read.clone(),
        };
        let result = parse_text(
            BufReader::with_capacity(READ_BUFFER, decoder),
            &envs(),
            max_bytes,
        );
        (result, read.get())
    }

    #[test]
    fn a_gzip_bomb_is_refused_after_a_small_bound() {
        // 1 GiB of zeros in about 1 MiB (1024 members of 1 MiB each), parsed with the ingest's
        // own bound: one over-long line in, it is refused, having decompressed one buffer or two.
        let zeros = bomb(&vec![0; 1 << 20], 1024);
        assert!(zeros.len() < 2 << 20, "{}", zeros.len());
        let err = parse(&zeros, &envs(), 2 << 30).unwrap_err();
        assert!(matches!(err, LogError::LineTooLong { line: 1 }), "{err}");
        let (result, read) = parse_counted(&zeros, 2 << 30);
        assert!(matches!(result, Err(LogError::LineTooLong { .. })));
        assert!(read <= 2 * READ_BUFFER as u64, "decompressed {read} bytes");

        // 1 GiB of blank lines (each one short) stops at the total bound instead.
        let blank = bomb(&vec![b'\n'; 1 << 20], 1024);
        let (result, read) = parse_counted(&blank, 4 << 20);
        assert!(
            matches!(result, Err(LogError::TooLarge { max_bytes }) if max_bytes == 4 << 20),
            "{result:?}"
        );
        assert!(
            read <= (4 << 20) + 2 * READ_BUFFER as u64,
            "decompressed {read} bytes"
        );
    }

    /// The totals `tests/fixtures/cloudfront-logs/README.md` promises.
    #[test]
    fn fixture_totals() {
        let read = |name: &str| {
            assert!(
                is_log_file("cdn-logs/", &format!("cdn-logs/{name}")),
                "{name}"
            );
            let raw = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
            parse(&raw, &envs(), 1 << 20).unwrap()
        };
        let first = read("E2EXAMPLE123.2026-11-20-10.a1b2c3d4.gz");
        let second = read("E2EXAMPLE123.2026-11-21-09.e5f6a7b8.gz");
        assert_eq!((first.lines, first.skipped), (6, 2));
        assert_eq!((second.lines, second.skipped), (3, 0));
        assert_eq!(
            first.served,
            served(&[
                ("2026-11-20", "acme", "prod", 3, 4000),
                ("2026-11-20", "globex", "dev", 1, 4096)
            ])
        );
        assert_eq!(
            second.served,
            served(&[
                ("2026-11-20", "acme", "prod", 2, 1000),
                ("2026-11-21", "acme", "prod", 1, 200)
            ])
        );
        let mut total = first.served;
        for (key, s) in second.served {
            let t = total.entry(key).or_default();
            t.requests += s.requests;
            t.bytes += s.bytes;
        }
        assert_eq!(
            total,
            served(&[
                ("2026-11-20", "acme", "prod", 5, 5000),
                ("2026-11-20", "globex", "dev", 1, 4096),
                ("2026-11-21", "acme", "prod", 1, 200),
            ])
        );
    }
}
