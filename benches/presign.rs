//! Presigning speed: the AWS SDK presigner against Cairn's own SigV4 signer (`storage::sigv4`,
//! with its cached signing key), for the same PUT and GET requests. No network is involved.
//!
//! Run: `cargo bench --bench presign`. Prints microseconds per URL and URLs per second.
use std::time::{Duration, Instant};

use aws_sdk_s3::{
    config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider},
    presigning::PresigningConfig,
    Client,
};
use cairn::{
    domain::ObjectKey,
    storage::s3::{Endpoint, S3Store},
};

const N: u32 = 20_000;

fn report(name: &str, elapsed: Duration) {
    let per = elapsed.as_secs_f64() / N as f64;
    println!(
        "{name:<34} {:>9.2} µs/URL {:>12.0} URLs/s",
        per * 1e6,
        1.0 / per
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let creds = Credentials::new("GKBENCHKEY", "bench-secret", None, None, "bench");
    let endpoint = "http://127.0.0.1:3900";
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("garage"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(creds.clone())
        .build();
    let client = Client::from_conf(conf);
    let store = S3Store::new(
        client.clone(),
        "bucket".into(),
        SharedCredentialsProvider::new(creds),
        "garage",
        Endpoint::parse(Some(endpoint), "garage", true).unwrap(),
        false,
        8 << 20,
    );
    let key =
        ObjectKey::parse("tenants/acme/prod/runs/run-1/image/0192f0a0-aaaa/frame 001.png").unwrap();
    let now = chrono::Utc::now();
    println!("presigning {N} URLs per case (single thread)");

    let start = Instant::now();
    for _ in 0..N {
        let cfg = PresigningConfig::builder()
            .start_time(now.into())
            .expires_in(Duration::from_secs(3600))
            .build()
            .unwrap();
        let r = client
            .get_object()
            .bucket("bucket")
            .key(key.as_str())
            .presigned(cfg)
            .await
            .unwrap();
        std::hint::black_box(r.uri());
    }
    report("GET, AWS SDK presigner", start.elapsed());

    let start = Instant::now();
    for _ in 0..N {
        let url = store
            .presign_url("GET", &key, &[("x-id", "GetObject")], &[], 3600, now)
            .await
            .unwrap();
        std::hint::black_box(url);
    }
    report("GET, Cairn signer (cached key)", start.elapsed());

    let start = Instant::now();
    for _ in 0..N {
        let cfg = PresigningConfig::builder()
            .start_time(now.into())
            .expires_in(Duration::from_secs(3600))
            .build()
            .unwrap();
        let r = client
            .put_object()
            .bucket("bucket")
            .key(key.as_str())
            .content_type("image/png")
            .content_length(123_456)
            .presigned(cfg)
            .await
            .unwrap();
        std::hint::black_box(r.uri());
    }
    report("PUT, AWS SDK presigner", start.elapsed());

    let start = Instant::now();
    for _ in 0..N {
        let url = store
            .presign_url(
                "PUT",
                &key,
                &[("x-id", "PutObject")],
                &[("content-length", "123456"), ("content-type", "image/png")],
                3600,
                now,
            )
            .await
            .unwrap();
        std::hint::black_box(url);
    }
    report("PUT, Cairn signer (cached key)", start.elapsed());
}
