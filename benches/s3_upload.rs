//! A large upload (1 GiB by default) into an S3-compatible store, two ways, in one run:
//! - through Cairn: `ObjectStore::put_stream` (what streamed uploads use): SHA-256 on the fly,
//!   multipart above the threshold with four parts in flight, retries with backoff;
//! - straight to the store with the AWS SDK: one streamed PutObject from a file.
//!
//! Prints MB/s for both and the process's peak RSS (VmHWM) around the Cairn upload.
//! Needs `AWS_*` variables reaching a store: run `scripts/bench-s3.sh`, which starts Garage.
//! `CAIRN_BENCH_UPLOAD_MIB` sets the size.
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use cairn::{
    config::{EndpointUrl, S3Config},
    domain::{ContentType, ObjectKey, SizeBytes},
    storage::{ObjectStore, UploadSpec, PRIVATE_IMMUTABLE},
};
use tokio::io::AsyncWriteExt;

const MIB: u64 = 1024 * 1024;

fn vm_hwm_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn chunk(i: u64) -> Bytes {
    (0..MIB)
        .map(|j| ((i * 31 + j * 7) % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

#[tokio::main]
async fn main() {
    let mib: u64 = std::env::var("CAIRN_BENCH_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib * MIB;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .map(|u| EndpointUrl::parse(&u).expect("AWS_ENDPOINT_URL_S3"));
    let sdk = aws_config::load_from_env().await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build(),
    );
    let bucket = format!("cairn-bench-{}", uuid::Uuid::now_v7().simple());
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the bench bucket (is the store up? use scripts/bench-s3.sh)");
    let cfg = S3Config {
        bucket: bucket.clone(),
        force_path_style: true,
        conditional_writes: false,
        region: None,
        endpoint_url: endpoint,
    };
    let store = cairn::storage::s3::connect(&cfg, 8 * MIB).await.unwrap();
    println!(
        "upload of {mib} MiB to {} (nproc {})",
        std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_else(|_| "AWS S3".into()),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // Through Cairn.
    let key = ObjectKey::parse("bench/through-cairn.bin").unwrap();
    let ct = ContentType::parse("application/octet-stream").unwrap();
    let spec = UploadSpec {
        key: &key,
        content_type: &ct,
        size: SizeBytes::new_unchecked(size),
        sha256: None,
        cache_control: PRIVATE_IMMUTABLE,
        expires_at: chrono::Utc::now(),
    };
    let body = futures_util::stream::iter((0..mib).map(|i| Ok(chunk(i))));
    let rss_before = vm_hwm_mib();
    let start = Instant::now();
    store.put_stream(&spec, Box::pin(body)).await.unwrap();
    let cairn_secs = start.elapsed().as_secs_f64();
    let rss_after = vm_hwm_mib();

    // Straight to the store: the same bytes from a file, one streamed PutObject.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("direct.bin");
    let mut f = tokio::fs::File::create(&path).await.unwrap();
    for i in 0..mib {
        f.write_all(&chunk(i)).await.unwrap();
    }
    f.sync_all().await.unwrap();
    drop(f);
    let start = Instant::now();
    client
        .put_object()
        .bucket(&bucket)
        .key("bench/direct.bin")
        .content_length(size as i64)
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    let direct_secs = start.elapsed().as_secs_f64();

    let mb = size as f64 / 1e6;
    println!(
        "{:<44} {:>8.1} MB/s",
        "through Cairn (put_stream, multipart x4)",
        mb / cairn_secs
    );
    println!(
        "{:<44} {:>8.1} MB/s",
        "straight to the store (SDK PutObject)",
        mb / direct_secs
    );
    println!(
        "through-Cairn / direct: {:.0}%",
        100.0 * direct_secs / cairn_secs
    );
    println!("peak RSS: {rss_before:.0} MiB before, {rss_after:.0} MiB after the Cairn upload");

    for key in ["bench/through-cairn.bin", "bench/direct.bin"] {
        client
            .delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .ok();
    }
    client.delete_bucket().bucket(&bucket).send().await.ok();
}
