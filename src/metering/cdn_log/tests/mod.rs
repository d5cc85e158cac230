//! Tests of the CloudFront log parser: formats, columns, attribution and errors.
use std::io::Write;

use flate2::{write::GzEncoder, Compression};

use super::*;

mod limits;

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
