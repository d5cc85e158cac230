//! A 500 MiB artifact streamed through `PUT /artifacts/{id}/content` of a real `cairn serve` on
//! S3, against the same bytes sent straight to the store with the AWS SDK, in one run. Prints
//! MB/s of both and the server's peak RSS (VmHWM of the `cairn serve` process).
//!
//! Needs `AWS_*` variables reaching a store: run `scripts/bench-s3.sh`, which starts Garage and
//! runs this and the `s3_upload` bench. `CAIRN_BENCH_ARTIFACT_MIB` sets the size.
use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const SECRET: &str = "cairn-bench-hs256-secret-0123456789abcdef";
const MIB: u64 = 1024 * 1024;

/// Chunk `i` of the test content; the first starts like a zip archive, as a bundle must.
fn chunk(i: u64) -> Bytes {
    let mut v: Vec<u8> = (0..MIB).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
    if i == 0 {
        v[..4].copy_from_slice(b"PK\x03\x04");
    }
    v.into()
}

fn vm_hwm_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cairn(dir: &Path, listen: &str, bucket: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DATABASE_URL")
        .env("CAIRN_DATA_DIR", dir.join("data"))
        .env("CAIRN_LISTEN", listen)
        .env("CAIRN_JWT_SECRET", SECRET)
        .env("CAIRN_STORAGE", "s3")
        .env("RAW_BUCKET", bucket)
        .env("CAIRN_S3_FORCE_PATH_STYLE", "true")
        .env("CAIRN_MAX_UPLOAD_BYTES", (2u64 << 30).to_string())
        .env("RUST_LOG", "warn");
    cmd
}

#[tokio::main]
async fn main() {
    let mib: u64 = std::env::var("CAIRN_BENCH_ARTIFACT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let size = mib * MIB;
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

    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let server = Server(
        cairn(dir.path(), &listen, &bucket)
            .arg("serve")
            .stdout(Stdio::null())
            .spawn()
            .expect("start `cairn serve`"),
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "server not healthy after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = cairn(dir.path(), &listen, &bucket)
        .args(["token", "--sub", "bench", "--tenant", "acme=owner"])
        .output()
        .expect("cairn token");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let scoped = |r: reqwest::RequestBuilder| {
        r.bearer_auth(&token)
            .header("x-tenant-id", "acme")
            .header("x-env", "dev")
    };

    println!(
        "artifact upload of {mib} MiB to {} (nproc {})",
        std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_else(|_| "AWS S3".into()),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let created: Value = scoped(http.post(format!("{base}/artifacts")))
        .json(
            &json!({"run_id": "bench", "kind": "bundle", "filename": "big.zip",
                      "content_type": "application/zip", "size_bytes": size}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rss_before = vm_hwm_mib(server.0.id());
    let body = futures_util::stream::iter((0..mib).map(|i| Ok::<_, std::io::Error>(chunk(i))));
    let start = Instant::now();
    let res = scoped(http.put(format!("{base}/artifacts/{id}/content")))
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    let cairn_secs = start.elapsed().as_secs_f64();
    let status = res.status();
    let a: Value = res.json().await.unwrap();
    assert!(status.is_success(), "upload failed: {a}");
    assert_eq!(a["status"], "available");
    let rss_after = vm_hwm_mib(server.0.id());

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
        "{:<52} {:>8.1} MB/s",
        "through Cairn (PUT /artifacts/{id}/content)",
        mb / cairn_secs
    );
    println!(
        "{:<52} {:>8.1} MB/s",
        "straight to the store (SDK PutObject)",
        mb / direct_secs
    );
    println!(
        "through-Cairn / direct: {:.0}%",
        100.0 * direct_secs / cairn_secs
    );
    println!(
        "cairn serve peak RSS: {rss_before:.0} MiB before, {rss_after:.0} MiB after the upload"
    );

    let listed = client
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    for o in listed.contents() {
        if let Some(k) = o.key() {
            client
                .delete_object()
                .bucket(&bucket)
                .key(k)
                .send()
                .await
                .ok();
        }
    }
    client.delete_bucket().bucket(&bucket).send().await.ok();
}
