//! The signer's tests: CloudFront's base64 alphabet and policy JSON, written and parsed.
use super::*;

#[test]
fn base64_uses_cloudfronts_alphabet() {
    // 0xfb 0xff is `+/8=` in standard base64.
    assert_eq!(encode(&[0xfb, 0xff]), "-~8_");
    assert_eq!(encode(&[0xfb, 0xef, 0xbe]), "----");
    assert_eq!(encode(&[0xff, 0xff, 0xff]), "~~~~");
    assert_eq!(encode(b"a"), "YQ__");
    assert_eq!(encode(b""), "");
    assert_eq!(decode("-~8_").unwrap(), [0xfb, 0xff]);
    assert_eq!(decode("YQ__").unwrap(), b"a");
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.extend((0..=255u8).rev());
    for len in 0..bytes.len() {
        let e = encode(&bytes[..len]);
        assert!(!e.contains(['+', '/', '=']), "{e}");
        assert_eq!(decode(&e).unwrap(), &bytes[..len]);
    }
}

#[test]
fn base64_decode_refuses_other_alphabets_and_bad_padding() {
    for bad in [
        "+/8=", "-~8=", "-~8", "-~9_", "YQ", "YQ_", "Y___", "a b_", "%2B~8_", "YQ__\n", "é",
    ] {
        assert_eq!(decode(bad), None, "{bad:?}");
    }
}

#[test]
fn json_escapes_strings_as_python_json_dumps() {
    // Python: json.dumps("a\"b\\c/d\te\nf\rg\x08h\x0ci\x00j\x1fk\x7fl é数😀\u2028 <>&'")
    let resource = "a\"b\\c/d\te\nf\rg\u{8}h\u{c}i\0j\u{1f}k\u{7f}l é数😀\u{2028} <>&'";
    let escaped =
        r#"a\"b\\c/d\te\nf\rg\bh\fi\u0000j\u001fk\u007fl \u00e9\u6570\ud83d\ude00\u2028 <>&'"#;
    let policy = Policy::canned(resource, 1);
    let json = policy.to_json();
    assert_eq!(
        json,
        format!(
            r#"{{"Statement":[{{"Resource":"{escaped}","Condition":{{"DateLessThan":{{"AWS:EpochTime":1}}}}}}]}}"#
        )
    );
    assert!(json.is_ascii());
    assert_eq!(Policy::parse(json.as_bytes()).unwrap(), policy);
}

#[test]
fn json_condition_order_and_addresses() {
    let mut p = custom("https://x/*");
    p.date_greater_than = Some(-5);
    p.ip_address = Some("192.0.2.1".into());
    assert_eq!(
        p.to_json(),
        r#"{"Statement":[{"Resource":"https://x/*","Condition":{"DateLessThan":{"AWS:EpochTime":1767225600},"IpAddress":{"AWS:SourceIp":"192.0.2.1/32"},"DateGreaterThan":{"AWS:EpochTime":-5}}}]}"#
    );
    p.ip_address = Some("2001:db8::1".into());
    assert!(p.to_json().contains(r#""AWS:SourceIp":"2001:db8::1/128""#));
    p.ip_address = Some("10.0.0.0/8".into());
    assert!(p.to_json().contains(r#""AWS:SourceIp":"10.0.0.0/8""#));
    p.ip_address = Some(String::new());
    assert!(!p.to_json().contains("IpAddress"));
}

#[test]
fn policy_parse_accepts_cloudfronts_layouts_and_refuses_the_rest() {
    // The layout of CloudFront's own examples: whitespace, CRLF, conditions in another order.
    let doc = "{ \r\n \"Statement\": [ { \r\n \"Resource\":\"https://d/demo.php\", \r\n \
               \"Condition\":{ \"IpAddress\":{\"AWS:SourceIp\":\"207.171.180.101/32\"}, \
               \"DateGreaterThan\":{\"AWS:EpochTime\":1296860176}, \
               \"DateLessThan\":{\"AWS:EpochTime\":1296860226} } } ] }\r\n";
    assert_eq!(
        Policy::parse(doc.as_bytes()).unwrap(),
        Policy {
            resource: "https://d/demo.php".into(),
            date_less_than: 1296860226,
            date_greater_than: Some(1296860176),
            ip_address: Some("207.171.180.101/32".into()),
        }
    );
    let ok = r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#;
    assert!(Policy::parse(ok.as_bytes()).is_ok());
    for bad in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"Statement":[]}"#,
        r#"{"Statement":{}}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{}}]}"#,
        r#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":7,"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":"r"}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":"5"}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5.5}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":99999999999999999999}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":5}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5},"Referer":{}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":"10.0.0.0/33"}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":"example.com"}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}},{"Resource":"s","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Effect":"Allow","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}],"Version":"1"}"#,
        r#"{"Statement":[{"Resource":"r","Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]"#,
    ] {
        assert_eq!(
            Policy::parse(bad.as_bytes()),
            Err(Denied::Malformed),
            "{bad}"
        );
    }
    let deep = "[".repeat(100_000);
    assert_eq!(Policy::parse(deep.as_bytes()), Err(Denied::Malformed));
}
