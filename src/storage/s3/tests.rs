//! Tests of the S3 backend: endpoints, URL and form signing, error mapping.
use std::time::Duration;

use aws_sdk_s3::{
    config::{BehaviorVersion, Credentials as SdkCredentials, Region},
    presigning::PresigningConfig,
};
use chrono::TimeZone;

use super::*;
use crate::{storage::ObjectStore, values::Filename};

fn store(path_style: bool) -> S3Store {
    let creds = SdkCredentials::new("GKEXAMPLEKEY", "secret/with+chars", None, None, "test");
    store_with(creds, path_style)
}

/// A store on a local endpoint signing with `creds` (other modules' tests use it too).
pub(crate) fn store_with(creds: SdkCredentials, path_style: bool) -> S3Store {
    let endpoint = if path_style {
        "http://127.0.0.1:3900"
    } else {
        "http://s3.example.test:3900"
    };
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("garage"))
        .endpoint_url(endpoint)
        .force_path_style(path_style)
        .credentials_provider(creds.clone())
        .build();
    S3Store::new(
        Client::from_conf(conf),
        "bucket".into(),
        SharedCredentialsProvider::new(creds),
        "garage",
        Endpoint::parse(Some(endpoint), "garage", path_style).unwrap(),
        false,
        8 * 1024 * 1024,
    )
}

fn presigning(now: DateTime<Utc>, secs: u64) -> PresigningConfig {
    PresigningConfig::builder()
        .start_time(now.into())
        .expires_in(Duration::from_secs(secs))
        .build()
        .unwrap()
}

/// On a role (temporary credentials, as the provider reports them) every presigned URL and
/// the `expires_at` Cairn reports end with the session, not later.
#[tokio::test]
async fn presigned_urls_end_with_the_role_session() {
    let now = Utc::now();
    let session_end = now + chrono::Duration::minutes(20);
    let creds = SdkCredentials::new(
        "ASIAEXAMPLEKEY",
        "secret",
        Some("session-token".into()),
        Some(session_end.into()),
        "test",
    );
    let s = store_with(creds, true);
    let deadline = s.signing_deadline().await.unwrap().unwrap();
    assert_eq!(deadline.timestamp(), session_end.timestamp());

    let week = now + chrono::Duration::days(7);
    let key = ObjectKey::parse("tenants/acme/dev/raw/0192f0a0/a.bin").unwrap();
    let name = Filename::parse("a.bin").unwrap();
    let url = s.presign_download(&key, &name, false, week).await.unwrap();
    let expires: u64 = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-Expires="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1190..=1200).contains(&expires), "{url}");
    assert!(url.contains("X-Amz-Security-Token=session-token"), "{url}");

    // What Cairn reports: the session's end, with the store's presigned GETs...
    let reported = crate::storage::url_expiry(&s, week).await.unwrap();
    assert_eq!(reported.timestamp(), session_end.timestamp());
    let soon = now + chrono::Duration::minutes(5);
    assert_eq!(crate::storage::url_expiry(&s, soon).await.unwrap(), soon);
    // (`cdn::delivery`'s tests check the private URLs it hands out end with it too.)

    // ...and none with long-term keys.
    assert_eq!(store(true).signing_deadline().await.unwrap(), None);
    assert_eq!(
        crate::storage::url_expiry(&store(true), week)
            .await
            .unwrap(),
        week
    );
}

/// Our signer's URLs are byte-identical to the SDK presigner's for the same inputs and time.
#[tokio::test]
async fn urls_match_the_sdk_presigner() {
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 30, 5).unwrap();
    let key = ObjectKey::parse("tenants/acme/dev/raw/0192f0a0/my file+ü (1).png").unwrap();
    let disposition = crate::storage::content_disposition("my file+ü (1).png", false);
    for path_style in [true, false] {
        let s = store(path_style);
        let sdk = s
            .client
            .get_object()
            .bucket("bucket")
            .key(key.as_str())
            .response_content_disposition(&disposition)
            .presigned(presigning(now, 3600))
            .await
            .unwrap();
        let ours = s
            .presign_url(
                "GET",
                &key,
                &[
                    ("x-id", "GetObject"),
                    ("response-content-disposition", &disposition),
                ],
                &[],
                3600,
                now,
            )
            .await
            .unwrap();
        assert_eq!(ours, sdk.uri(), "GET, path style {path_style}");
        assert_eq!(ours.starts_with("http://bucket."), !path_style);

        let sdk = s
            .client
            .put_object()
            .bucket("bucket")
            .key(key.as_str())
            .content_type("image/png")
            .content_length(1234)
            .presigned(presigning(now, 900))
            .await
            .unwrap();
        let signed: Vec<(&str, &str)> = sdk.headers().collect();
        let ours = s
            .presign_url(
                "PUT",
                &key,
                &[("x-id", "PutObject")],
                &[("content-length", "1234"), ("content-type", "image/png")],
                900,
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            ours,
            sdk.uri(),
            "PUT, path style {path_style}; SDK headers {signed:?}"
        );
    }
}
