//! HTTP benchmark of the real `cairn serve` process (SQLite catalog and local object store, both
//! in a fresh temp dir), driven over HTTP/1.1 by reqwest from this process.
//!
//! What it measures:
//! - `POST /storage/raw/presign-upload`, `POST /storage/raw/register` (on assets presigned and
//!   uploaded beforehand, untimed) and `GET /storage/raw/{asset_id}` (on registered assets), each
//!   at concurrency 1 and 32: requests/s, p50 and p99 latency, and errors (a transport error or
//!   any non-2xx status counts as one);
//! - one 256 MiB upload streamed through `PUT /o/...` and then registered: MB/s of the PUT and
//!   the server's peak RSS (`VmHWM`) during it.
//!
//! Run: `cargo bench --bench http` (release profile; takes a minute or two). It prints its figures
//! and asserts nothing. Client and server share the machine, so on a small machine the client's
//! own CPU use is part of every figure.
use std::{
    collections::BTreeMap,
    future::Future,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{header::CONTENT_LENGTH, RequestBuilder};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const SECRET: &str = "cairn-bench-hs256-secret-0123456789abcdef";
const TENANT: &str = "acme";
const ENV: &str = "dev";
const OCTETS: &str = "application/octet-stream";
/// (concurrency, requests) of each measured case.
const CASES: [(usize, usize); 2] = [(1, 2_000), (32, 20_000)];
/// Concurrency of the untimed setup (uploading the objects that register needs).
const SETUP_CONCURRENCY: usize = 32;
const WARMUP_REQUESTS: usize = 200;
const SMALL_BYTES: usize = 1024;
const BIG_BYTES: u64 = 256 * 1024 * 1024;
const BIG_CHUNK: usize = 1024 * 1024;

#[tokio::main]
async fn main() {
    let server = Server::start().await;
    let api = Api {
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client"),
        base: server.base.clone(),
        token: server.token(),
    };
    let mut rows = Vec::new();

    // Warm-up: connections, the catalog's first pages, the allocator. Not recorded.
    let pid = server.pid();
    drive(pid, 4, WARMUP_REQUESTS, {
        let api = api.clone();
        move |_| presign(api.clone())
    })
    .await;

    // Presign: its assets are the ones register uses later, one set per case.
    let mut presigned = Vec::new();
    for (conc, n) in CASES {
        let m = drive(pid, conc, n, {
            let api = api.clone();
            move |_| presign(api.clone())
        })
        .await;
        rows.push(Row::new("presign-upload", conc, n, &m));
        presigned.push(m.outputs);
    }

    // Setup (untimed): upload distinct 1 KiB contents, so that every register stores a new blob
    // rather than deduplicating onto an earlier one.
    let started = Instant::now();
    let mut uploaded = Vec::new();
    let mut setup_errors = Errors::default();
    let mut first = 0;
    for pending in presigned {
        let pending = Arc::new(pending);
        let m = drive(pid, SETUP_CONCURRENCY, pending.len(), {
            let (api, pending) = (api.clone(), pending.clone());
            move |i| put_small(api.clone(), pending[i].clone(), first + i)
        })
        .await;
        first += pending.len();
        setup_errors.merge(m.errors);
        uploaded.push(m.outputs);
    }
    println!(
        "setup: uploaded {} objects of {SMALL_BYTES} bytes via /o/ in {:.1} s (c={SETUP_CONCURRENCY}), {} errors",
        uploaded.iter().map(Vec::len).sum::<usize>(),
        started.elapsed().as_secs_f64(),
        setup_errors.total,
    );
    setup_errors.print("setup upload");

    let mut registered = Vec::new();
    for ((conc, _), ready) in CASES.into_iter().zip(uploaded) {
        let n = ready.len();
        let ready = Arc::new(ready);
        let m = drive(pid, conc, n, {
            let (api, ready) = (api.clone(), ready.clone());
            move |i| register(api.clone(), ready[i].clone())
        })
        .await;
        rows.push(Row::new("register", conc, n, &m));
        registered.extend(m.outputs);
    }

    let ids = Arc::new(registered);
    for (conc, n) in CASES {
        if ids.is_empty() {
            println!("metadata GET skipped: no asset was registered");
            break;
        }
        let m = drive(pid, conc, n, {
            let (api, ids) = (api.clone(), ids.clone());
            move |i| get_metadata(api.clone(), ids[i % ids.len()].clone())
        })
        .await;
        rows.push(Row::new("get metadata", conc, n, &m));
    }

    let big = big_upload(&api, pid).await;

    println!();
    println!(
        "{:<20} {:>4} {:>9} {:>9} {:>8} {:>8} {:>7} {:>8} {:>8}",
        "operation",
        "conc",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "srv cpu",
        "cli cpu"
    );
    for r in &rows {
        println!("{r}");
    }
    println!("{big}");
    println!();
    println!("machine: nproc = {}, {}", nproc(), cpu_model());
    println!(
        "run: `cargo bench --bench http` (release); `cairn serve` as a child process on 127.0.0.1 \
         (SQLite WAL + local store in a temp dir, RUST_LOG=warn), driven by one reqwest client \
         (HTTP/1.1 keep-alive) with N tokio tasks for concurrency N on the same machine; \
         {WARMUP_REQUESTS} presigns of warm-up; latency is per request, including reading the body; \
         srv/cli cpu: cores the server / this client kept busy on average during the case."
    );
    server.print_log();
}

/// The `cairn serve` child process; killed when dropped, also when the bench panics.
struct Server {
    child: Child,
    base: String,
    listen: String,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let log = dir.path().join("server.log");
        let stderr = std::fs::File::create(&log).expect("server log file");
        let child = cairn(dir.path(), &listen)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start `cairn serve`");
        let mut server = Self {
            child,
            base: format!("http://{listen}"),
            listen,
            log,
            dir,
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&mut self) {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("server status") {
                panic!("`cairn serve` exited with {status}:\n{}", self.log_text());
            }
            let ok = http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "server not healthy after 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An HS256 token minted by `cairn token` with the server's own settings.
    fn token(&self) -> String {
        let out = cairn(self.dir.path(), &self.listen)
            .args(["token", "--sub", "bench", "--ttl", "1h", "--tenant"])
            .arg(format!("{TENANT}=owner"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run `cairn token`");
        assert!(out.status.success(), "`cairn token` failed: {}", out.status);
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server logs only warnings and errors: show how many there were and the first few.
    fn print_log(&self) {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        println!("server log (RUST_LOG=warn): {} lines", lines.len());
        for line in lines.iter().take(5) {
            println!("  {line}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cairn` with the bench's settings, and none inherited from the caller's environment.
fn cairn(dir: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(|n| n.starts_with("CAIRN_") || n.starts_with("AWS_"))
            || name == "DATABASE_URL"
            || name == "RAW_BUCKET"
        {
            cmd.env_remove(name);
        }
    }
    cmd.env("CAIRN_DATA_DIR", dir.join("data"))
        .env("CAIRN_LISTEN", listen)
        .env("CAIRN_JWT_SECRET", SECRET)
        .env("CAIRN_MAX_UPLOAD_BYTES", (1u64 << 30).to_string())
        .env("RUST_LOG", "warn");
    cmd
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn scoped(&self, req: RequestBuilder) -> RequestBuilder {
        req.bearer_auth(&self.token)
            .header("x-tenant-id", TENANT)
            .header("x-env", ENV)
    }
    fn post(&self, path: &str, body: &Value) -> RequestBuilder {
        self.scoped(self.http.post(format!("{}{path}", self.base)))
            .json(body)
    }
    fn get(&self, path: &str) -> RequestBuilder {
        self.scoped(self.http.get(format!("{}{path}", self.base)))
    }
}

/// A failed request: `kind` groups failures for the summary ("HTTP 500 internal").
struct Failure {
    kind: String,
    detail: String,
}

impl Failure {
    fn new(kind: impl Into<String>, detail: impl ToString) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
        }
    }
}

/// Sends and reads the whole response; anything but 2xx is a failure.
async fn send(req: RequestBuilder) -> Result<Bytes, Failure> {
    let resp = req
        .send()
        .await
        .map_err(|e| Failure::new("transport error", e))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Failure::new("transport error (body)", e))?;
    if status.is_success() {
        return Ok(body);
    }
    let problem: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let code = problem["code"].as_str().unwrap_or("-");
    let detail = match problem["detail"].as_str() {
        Some(d) => d.to_owned(),
        None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    Err(Failure::new(format!("HTTP {status} {code}"), detail))
}

async fn send_json(req: RequestBuilder) -> Result<Value, Failure> {
    let body = send(req).await?;
    serde_json::from_slice(&body).map_err(|e| Failure::new("response is not JSON", e))
}

/// A presigned PUT: where to send the bytes and the headers to send with them.
#[derive(Clone)]
struct Pending {
    asset_id: String,
    url: String,
    headers: Vec<(String, String)>,
}

fn pending(v: &Value) -> Option<Pending> {
    let upload = &v["upload"];
    Some(Pending {
        asset_id: v["asset_id"].as_str()?.to_owned(),
        url: upload["url"].as_str()?.to_owned(),
        headers: upload["headers"]
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect::<Option<_>>()?,
    })
}

async fn presign(api: Api) -> Result<Pending, Failure> {
    let body = json!({"filename": "f.bin", "content_type": OCTETS, "size_bytes": SMALL_BYTES});
    let v = send_json(api.post("/storage/raw/presign-upload", &body)).await?;
    pending(&v).ok_or_else(|| Failure::new("unexpected presign answer", v))
}

/// An uploaded object, ready to register.
#[derive(Clone)]
struct Uploaded {
    asset_id: String,
    sha256: String,
}

/// Uploads `SMALL_BYTES` bytes that are distinct for every `n`.
async fn put_small(api: Api, p: Pending, n: usize) -> Result<Uploaded, Failure> {
    let mut content = format!("cairn bench object {n:010}\n").into_bytes();
    content.resize(SMALL_BYTES, b'.');
    let sha256 = hex::encode(Sha256::digest(&content));
    let mut req = api.http.put(&p.url).body(content);
    for (name, value) in &p.headers {
        req = req.header(name, value);
    }
    send(req).await?;
    Ok(Uploaded {
        asset_id: p.asset_id,
        sha256,
    })
}

async fn register(api: Api, u: Uploaded) -> Result<String, Failure> {
    let body = json!({
        "asset_id": u.asset_id,
        "sha256": u.sha256,
        "size_bytes": SMALL_BYTES,
        "content_type": OCTETS,
    });
    send(api.post("/storage/raw/register", &body)).await?;
    Ok(u.asset_id)
}

async fn get_metadata(api: Api, asset_id: String) -> Result<(), Failure> {
    send(api.get(&format!("/storage/raw/{asset_id}"))).await?;
    Ok(())
}

/// Failures counted by kind, with the first detail seen of each.
#[derive(Default)]
struct Errors {
    total: usize,
    kinds: BTreeMap<String, (usize, String)>,
}

impl Errors {
    fn add(&mut self, f: Failure) {
        self.total += 1;
        self.kinds.entry(f.kind).or_insert((0, f.detail)).0 += 1;
    }
    fn merge(&mut self, other: Errors) {
        self.total += other.total;
        for (kind, (n, detail)) in other.kinds {
            self.kinds.entry(kind).or_insert((0, detail)).0 += n;
        }
    }
    fn print(&self, what: &str) {
        for (kind, (n, detail)) in &self.kinds {
            println!("  {what}: {n} x {kind}, e.g. {detail}");
        }
    }
}

/// The outcome of one measured case.
struct Measured<T> {
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// The successful requests' results, in request order.
    outputs: Vec<T>,
    errors: Errors,
    /// CPU time used during the case divided by its wall time: cores busy on average.
    server_cores: Option<f64>,
    client_cores: Option<f64>,
}

/// Runs `op(0..requests)` from `concurrency` tasks, each taking the next index when it is free.
async fn drive<T, F, Fut>(server: u32, concurrency: usize, requests: usize, op: F) -> Measured<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Failure>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = (cpu_secs("self"), cpu_secs(&server.to_string()));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let (mut latencies, mut outputs, mut failures) = (Vec::new(), Vec::new(), vec![]);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let t = Instant::now();
                    let result = op(i).await;
                    latencies.push(t.elapsed());
                    match result {
                        Ok(v) => outputs.push((i, v)),
                        Err(f) => failures.push(f),
                    }
                }
                (latencies, outputs, failures)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let mut outputs = Vec::with_capacity(requests);
    let mut errors = Errors::default();
    for w in workers {
        let (l, o, f) = w.await.expect("a bench task panicked");
        latencies.extend(l);
        outputs.extend(o);
        f.into_iter().for_each(|f| errors.add(f));
    }
    let elapsed = started.elapsed();
    let cores =
        |before: Option<f64>, after: Option<f64>| Some((after? - before?) / elapsed.as_secs_f64());
    let client_cores = cores(cpu_before.0, cpu_secs("self"));
    let server_cores = cores(cpu_before.1, cpu_secs(&server.to_string()));
    latencies.sort_unstable();
    outputs.sort_unstable_by_key(|(i, _)| *i);
    Measured {
        elapsed,
        latencies,
        outputs: outputs.into_iter().map(|(_, v)| v).collect(),
        errors,
        server_cores,
        client_cores,
    }
}

/// One line of the table.
struct Row {
    op: &'static str,
    conc: usize,
    requests: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
    server_cores: Option<f64>,
    client_cores: Option<f64>,
}

impl Row {
    fn new<T>(op: &'static str, conc: usize, requests: usize, m: &Measured<T>) -> Self {
        let row = Self {
            op,
            conc,
            requests,
            per_sec: requests as f64 / m.elapsed.as_secs_f64(),
            p50: percentile(&m.latencies, 0.50),
            p99: percentile(&m.latencies, 0.99),
            errors: m.errors.total,
            server_cores: m.server_cores,
            client_cores: m.client_cores,
        };
        println!("{row}   ({:.1} s)", m.elapsed.as_secs_f64());
        m.errors.print(op);
        row
    }
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let cores = |c: Option<f64>| c.map_or("?".into(), |c| format!("{c:.2}"));
        write!(
            f,
            "{:<20} {:>4} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>8} {:>8}",
            self.op,
            self.conc,
            self.requests,
            self.per_sec,
            ms(self.p50),
            ms(self.p99),
            self.errors,
            cores(self.server_cores),
            cores(self.client_cores),
        )
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 256 MiB upload's figures, printed under the table.
struct BigUpload {
    mb_per_sec: f64,
    secs: f64,
    /// KiB: peak over the earlier phases, RSS just before, peak during the upload.
    hwm_before: Option<u64>,
    rss_before: Option<u64>,
    hwm_after: Option<u64>,
    peak_was_reset: bool,
    put: Result<(), String>,
    register: Result<(), String>,
}

impl std::fmt::Display for BigUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        match &self.put {
            Ok(()) => write!(
                f,
                "upload 256 MiB via /o/: {:.0} MB/s ({:.2} s), server peak RSS {} MiB",
                self.mb_per_sec,
                self.secs,
                mib(self.hwm_after)
            )?,
            Err(e) => write!(f, "upload 256 MiB via /o/: FAILED: {e}")?,
        }
        if self.peak_was_reset {
            write!(
                f,
                " (baseline: RSS {} MiB just before it; peak over the earlier phases {} MiB)",
                mib(self.rss_before),
                mib(self.hwm_before)
            )?;
        } else {
            write!(
                f,
                " (baseline VmHWM {} MiB; could not reset it, so the peak may predate the upload)",
                mib(self.hwm_before)
            )?;
        }
        match &self.register {
            Ok(()) => write!(f, "\nregister of the 256 MiB asset: ok"),
            Err(e) => write!(f, "\nregister of the 256 MiB asset: FAILED: {e}"),
        }
    }
}

/// Presigns, PUTs a generated 256 MiB body chunk by chunk (hashing it on the way) and registers it.
async fn big_upload(api: &Api, pid: u32) -> BigUpload {
    let mut result = BigUpload {
        mb_per_sec: 0.0,
        secs: 0.0,
        hwm_before: proc_status_kib(pid, "VmHWM"),
        rss_before: proc_status_kib(pid, "VmRSS"),
        hwm_after: None,
        peak_was_reset: false,
        put: Err("not attempted".into()),
        register: Err("not attempted".into()),
    };
    let body = json!({"filename": "big.bin", "content_type": OCTETS, "size_bytes": BIG_BYTES});
    let presigned = match send_json(api.post("/storage/raw/presign-upload", &body)).await {
        Ok(v) => pending(&v).ok_or_else(|| format!("unexpected presign answer {v}")),
        Err(f) => Err(format!("presign: {} {}", f.kind, f.detail)),
    };
    let p = match presigned {
        Ok(p) => p,
        Err(e) => {
            result.put = Err(e);
            return result;
        }
    };

    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let chunks = futures_util::stream::iter(0..BIG_BYTES / BIG_CHUNK as u64).map({
        let hasher = hasher.clone();
        move |i| {
            let chunk = pattern_chunk(i);
            hasher.lock().unwrap().update(&chunk);
            Ok::<_, std::io::Error>(Bytes::from(chunk))
        }
    });
    let mut req = api
        .http
        .put(&p.url)
        .header(CONTENT_LENGTH, BIG_BYTES)
        .body(reqwest::Body::wrap_stream(chunks));
    for (name, value) in p.headers.iter().filter(|(n, _)| n != "content-length") {
        req = req.header(name, value);
    }
    // Reset the peak so that VmHWM afterwards is the peak during the upload (Linux >= 4.0).
    result.peak_was_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let started = Instant::now();
    let put = send(req).await;
    result.secs = started.elapsed().as_secs_f64();
    result.hwm_after = proc_status_kib(pid, "VmHWM");
    result.mb_per_sec = BIG_BYTES as f64 / 1e6 / result.secs;
    result.put = put
        .map(drop)
        .map_err(|f| format!("{}: {}", f.kind, f.detail));
    if result.put.is_err() {
        return result;
    }

    let sha256 = hex::encode(hasher.lock().unwrap().clone().finalize());
    let body = json!({
        "asset_id": p.asset_id,
        "sha256": sha256,
        "size_bytes": BIG_BYTES,
        "content_type": OCTETS,
    });
    result.register = send(api.post("/storage/raw/register", &body))
        .await
        .map(drop)
        .map_err(|f| format!("{}: {}", f.kind, f.detail));
    result
}

/// 1 MiB of deterministic pseudo-random bytes (xorshift64), different for every `index`.
fn pattern_chunk(index: u64) -> Vec<u8> {
    let mut x = (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut chunk = Vec::with_capacity(BIG_CHUNK);
    for _ in 0..BIG_CHUNK / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.extend_from_slice(&x.to_le_bytes());
    }
    chunk
}

/// CPU time (user + system, all threads) of `/proc/<pid>` so far, in seconds.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

/// `getconf CLK_TCK`, the unit of `/proc/<pid>/stat` times (100 on practically every Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `kB` field of `/proc/<pid>/status`, like VmHWM (peak RSS) or VmRSS.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn nproc() -> String {
    Command::new("nproc")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or("?".into(), |n| n.to_string())
        })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
