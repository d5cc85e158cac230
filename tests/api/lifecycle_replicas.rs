//! Exactly-once lifecycle across replicas (Postgres catalog + S3 store only): three `cairn serve`
//! processes on one catalog and one bucket, their schedules firing together every 2 s, and 1,000
//! expired artifacts (public and private, in three tenant+envs, some sharing their content).
//! Each item is soft-deleted and purged once, each object removed once and without a delete
//! error, a shared object outlives the first of its items, each cron tick has one
//! `lifecycle_run`, claimed by one replica while the others stand aside, and no two sweeps ever
//! run at once (the first sweep, of 880 items, may outlast a period of the schedule).
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use cairn::{
    auth::{mint, Claims, Role},
    config::{JwtConfig, JwtKey, Secret},
    lifecycle::Report,
};
use chrono::{DateTime, Utc};
use entity::{artifact, blob, dataset_event, lifecycle_run};
use futures_util::{stream, StreamExt};
use reqwest::{Method, StatusCode};
use sea_orm::{
    ColumnTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{self, kind_of, sample, sha256_hex, SECRET};

/// Every 2 seconds, on every replica: the first sweep (880 items) may outlast a period.
const CRON: &str = "*/2 * * * * *";
const PERIOD_SECS: i64 = 2;
const ITEMS: usize = 1000;
/// Distinct contents: 700 single items, 120 pairs and 20 triples sharing theirs.
const GROUPS: usize = 840;
/// Expiry of the first wave, from each create: passed before the replicas start.
const EARLY_SECS: i64 = 5;
/// Expiry of the second wave: after the replicas purged the first.
const LATE_SECS: i64 = 30;
/// Requests in flight while seeding.
const CONCURRENCY: usize = 12;
const SCOPES: [(&str, &str); 3] = [("acme", "dev"), ("acme", "prod"), ("beta", "dev")];
const TYPES: [&str; 4] = ["image/png", "image/webp", "audio/ogg", "video/mp4"];

/// A `cairn serve` process and everything it logged (JSON lines).
struct Cairn {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    base: String,
    _dir: tempfile::TempDir,
}

impl Cairn {
    /// Starts `cairn serve` on `database_url` and `bucket`; [`Cairn::ready`] waits for it.
    fn start(name: &str, database_url: &str, bucket: &str, jobs: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
        c.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // The S3 server scripts/test.sh started: endpoint, region and credentials.
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
            .env("CAIRN_DATA_DIR", dir.path())
            .env("DATABASE_URL", database_url)
            .env("CAIRN_STORAGE", "s3")
            .env("RAW_BUCKET", bucket)
            .env("CAIRN_S3_FORCE_PATH_STYLE", "true")
            .env(
                "CAIRN_S3_CONDITIONAL_WRITES",
                std::env::var("CAIRN_TEST_S3_CONDITIONAL_WRITES").unwrap_or_else(|_| "true".into()),
            )
            .env("CAIRN_JWT_SECRET", SECRET)
            .env("CAIRN_LISTEN", "127.0.0.1:0")
            .env("CAIRN_JOBS", if jobs { "on" } else { "off" })
            .env("CAIRN_LIFECYCLE_CRON", CRON)
            // Expired items are soft-deleted and purged in the same sweep.
            .env("CAIRN_PURGE_GRACE_SECS", "0")
            .env("CAIRN_LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                "info,sqlx=warn,sea_orm=warn,cairn::lifecycle=debug,cairn::jobs=debug",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("cairn starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child,
            log,
            base: String::new(),
            _dir: dir,
        }
    }

    /// Waits until the server listens; remembers its address.
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let address = self.entries().into_iter().find_map(|e| {
                (e["fields"]["message"] == "cairn listening")
                    .then(|| e["fields"]["address"].as_str().map(str::to_owned))
                    .flatten()
            });
            if let Some(a) = address {
                self.base = format!("http://{a}");
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited at start-up ({status})", self.name);
            }
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The log lines that are JSON (all of them, unless something printed raw text).
    fn entries(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Cairn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self.lines();
            let path = std::env::temp_dir().join(format!(
                "cairn-lifecycle-replicas-{}-{}.log",
                self.name,
                self.pid()
            ));
            let _ = std::fs::write(&path, lines.join("\n"));
            eprintln!(
                "---- {} (pid {}): lifecycle, warning and error lines; whole log in {} ----",
                self.name,
                self.pid(),
                path.display()
            );
            let notable: Vec<&String> = lines
                .iter()
                .filter(|l| {
                    l.contains("cairn::lifecycle")
                        || l.contains("cairn::jobs")
                        || l.contains("\"level\":\"WARN\"")
                        || l.contains("\"level\":\"ERROR\"")
                        || !l.starts_with('{')
                })
                .collect();
            for l in &notable[notable.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
        }
    }
}

/// What a replica logged when its schedule fired for a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Firing {
    /// Claimed the tick and swept.
    Ran,
    /// Claimed the tick; another sweep held the lease (the run is `skipped`).
    Busy,
    /// Another replica had claimed the tick.
    Taken,
    Failed,
}

/// `(tick, outcome)` for every firing `c` logged.
fn firings(c: &Cairn) -> Vec<(String, Firing)> {
    c.entries()
        .into_iter()
        .filter(|e| e["target"] == "cairn::jobs::runner" && e["fields"]["job"] == "lifecycle")
        .filter_map(|e| {
            let tick = e["fields"]["tick"].as_str()?.to_owned();
            let msg = e["fields"]["message"].as_str().unwrap_or_default();
            let what = if msg == "scheduled run done" {
                Firing::Ran
            } else if msg == "another replica runs this tick" {
                Firing::Taken
            } else if msg.starts_with("a lifecycle run is already going") {
                Firing::Busy
            } else {
                Firing::Failed
            };
            Some((tick, what))
        })
        .collect()
}

/// Content one or more artifacts share (one blob), and when each of them expires.
struct Group {
    g: usize,
    tenant: &'static str,
    env: &'static str,
    visibility: &'static str,
    ct: &'static str,
    bytes: Arc<Vec<u8>>,
    /// The first member expires late (it is created in the second wave).
    first_late: bool,
    /// Further members (deduplicated at create): whether each expires late.
    more: Vec<bool>,
}

fn plan() -> Vec<Group> {
    let groups: Vec<Group> = (0..GROUPS)
        .map(|g| {
            let (tenant, env) = SCOPES[g % SCOPES.len()];
            let ct = TYPES[g % TYPES.len()];
            let mut bytes = sample(ct, 48);
            bytes.extend_from_slice(format!("content of group {g}").as_bytes());
            let more = match g {
                0..700 => vec![],
                700..820 => vec![g % 2 == 1],
                _ => vec![g % 2 == 1, g % 2 == 0],
            };
            Group {
                g,
                tenant,
                env,
                visibility: if g % 5 == 0 { "public" } else { "private" },
                ct,
                bytes: Arc::new(bytes),
                first_late: (660..700).contains(&g),
                more,
            }
        })
        .collect();
    let items: usize = groups.iter().map(|g| 1 + g.more.len()).sum();
    assert_eq!(items, ITEMS);
    groups
}

/// An artifact the test created.
#[derive(Debug, Clone)]
struct Seeded {
    id: Uuid,
    group: usize,
    late: bool,
    expires_at: DateTime<Utc>,
}

/// Calls one server's API as an owner of every tenant the test uses.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(client: &reqwest::Client, base: &str) -> Self {
        let jwt = JwtConfig {
            key: JwtKey::Hs256(Secret::new(SECRET)),
            issuer: None,
            audience: None,
        };
        let claims = Claims {
            sub: "seeder".into(),
            exp: Utc::now().timestamp() + 3600,
            iat: None,
            iss: None,
            aud: None,
            tenants: BTreeMap::from([
                ("acme".to_owned(), Role::Owner),
                ("beta".to_owned(), Role::Owner),
            ]),
            operator: false,
        };
        Self {
            client: client.clone(),
            base: base.to_owned(),
            token: mint(&jwt, &claims).unwrap(),
        }
    }

    fn request(&self, method: Method, path: &str, gr: &Group) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("x-tenant-id", gr.tenant)
            .header("x-env", gr.env)
    }

    /// `POST /artifacts` for member `k` of `gr`; with `dedup`, declaring the content's sha256.
    async fn create(&self, gr: &Group, k: usize, expires_at: DateTime<Utc>, dedup: bool) -> Value {
        let ext = gr.ct.rsplit('/').next().unwrap();
        let mut body = json!({
            "run_id": format!("r{}", gr.g % 7),
            "kind": kind_of(gr.ct),
            "filename": format!("item-{}-{k}.{ext}", gr.g),
            "content_type": gr.ct,
            "size_bytes": gr.bytes.len(),
            "visibility": gr.visibility,
            "expires_at": expires_at,
        });
        if dedup {
            body["sha256"] = json!(sha256_hex(&gr.bytes));
        }
        let res = self
            .request(Method::POST, "/artifacts", gr)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "group {} member {k}: {text}",
            gr.g
        );
        serde_json::from_str(&text).unwrap()
    }

    /// Member `k` of `gr`, its content streamed through `PUT /artifacts/{id}/content`.
    async fn stream(&self, gr: &Group, k: usize, late: bool) -> Seeded {
        let expires_at = expiry(late);
        let created = self.create(gr, k, expires_at, false).await;
        let id = created["artifact"]["artifact_id"].as_str().unwrap();
        let res = self
            .request(Method::PUT, &format!("/artifacts/{id}/content"), gr)
            .body(gr.bytes.to_vec())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "group {} content: {text}", gr.g);
        let a: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(a["status"], "available", "{a}");
        Seeded {
            id: id.parse().unwrap(),
            group: gr.g,
            late,
            expires_at,
        }
    }

    /// Member `k` of `gr` on the content already stored: available at once, nothing uploaded.
    async fn dedup(&self, gr: &Group, k: usize, late: bool) -> Seeded {
        let expires_at = expiry(late);
        let created = self.create(gr, k, expires_at, true).await;
        assert_eq!(
            created["artifact"]["status"], "available",
            "not deduplicated: {created}"
        );
        assert!(created["upload"].is_null(), "{created}");
        Seeded {
            id: created["artifact"]["artifact_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
            group: gr.g,
            late,
            expires_at,
        }
    }

    async fn content(&self, gr: &Group, id: Uuid) -> (StatusCode, Vec<u8>) {
        let res = self
            .request(Method::GET, &format!("/artifacts/{id}/content"), gr)
            .send()
            .await
            .unwrap();
        (res.status(), res.bytes().await.unwrap().to_vec())
    }
}

fn expiry(late: bool) -> DateTime<Utc> {
    let secs = if late { LATE_SECS } else { EARLY_SECS };
    Utc::now() + chrono::Duration::seconds(secs)
}

async fn bucket_keys(bucket: &str) -> Vec<String> {
    let s3 = helpers::s3_client().await;
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}

async fn count_artifacts(db: &DatabaseConnection) -> u64 {
    artifact::Entity::find().count(db).await.unwrap()
}

async fn count_blobs(db: &DatabaseConnection) -> u64 {
    blob::Entity::find().count(db).await.unwrap()
}

/// The process id in a run's `holder` (`host:pid:nonce`).
fn holder_pid(holder: &str) -> u32 {
    let mut parts = holder.rsplit(':');
    parts.next();
    parts
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("holder `{holder}` names no pid"))
}

/// Subjects of the events of `kind`, and how many events each has.
async fn subjects(db: &DatabaseConnection, kind: &str) -> HashMap<Uuid, usize> {
    let mut out = HashMap::new();
    let events = dataset_event::Entity::find()
        .filter(dataset_event::Column::EventType.eq(kind))
        .all(db)
        .await
        .unwrap();
    for e in events {
        *out.entry(e.subject_id).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "Postgres + S3 only: scripts/test.sh selects it on that run"]
async fn three_replicas_purge_each_expired_item_once_with_one_run_per_tick() {
    helpers::require_backend(Some("postgres"), "s3");
    let database_url = helpers::new_postgres_database().await;
    let bucket = helpers::new_s3_bucket().await;
    let db = Database::connect(&database_url).await.unwrap();
    let client = reqwest::Client::new();
    let groups = plan();

    // ---- Seed through a server that runs no jobs (it also migrates the catalog). ----
    let started = Instant::now();
    let mut seeder = Cairn::start("seeder", &database_url, &bucket, false);
    seeder.ready().await;
    let api = Api::new(&client, &seeder.base);
    // First wave: the first member of every group but the late singles, streamed; early expiry.
    let mut seeded: Vec<Seeded> = stream::iter(groups.iter().filter(|g| !g.first_late))
        .map(|gr| {
            let api = api.clone();
            async move { api.stream(gr, 0, false).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    // Second wave: the late singles, streamed, and the further members of shared content,
    // deduplicated at create; half of those expire late, outliving the first of their group.
    let second: Vec<Seeded> = stream::iter(groups.iter().flat_map(|gr| {
        let first = gr.first_late.then_some((gr, 0, true));
        first.into_iter().chain(
            gr.more
                .iter()
                .enumerate()
                .map(move |(i, late)| (gr, i + 1, *late)),
        )
    }))
    .map(|(gr, k, late)| {
        let api = api.clone();
        async move {
            if k == 0 {
                api.stream(gr, k, late).await
            } else {
                api.dedup(gr, k, late).await
            }
        }
    })
    .buffer_unordered(CONCURRENCY)
    .collect()
    .await;
    seeded.extend(second);
    eprintln!(
        "seeded {} artifacts on {} blobs in {:.1?}",
        seeded.len(),
        GROUPS,
        started.elapsed()
    );
    assert_eq!(seeded.len(), ITEMS);
    let ids: HashSet<Uuid> = seeded.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), ITEMS);
    let available = artifact::Entity::find()
        .filter(artifact::Column::Status.eq(artifact::STATUS_AVAILABLE))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(count_artifacts(&db).await, ITEMS as u64);
    assert_eq!(available, ITEMS as u64);
    let blob_ids: HashSet<Uuid> = blob::Entity::find()
        .select_only()
        .column(blob::Column::Id)
        .into_tuple()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(blob_ids.len(), GROUPS, "one blob per distinct content");
    let stored = bucket_keys(&bucket).await;
    assert_eq!(stored.len(), GROUPS);
    assert!(
        stored.iter().any(|k| k.starts_with("public/")),
        "some objects are public"
    );
    drop(seeder);
    // Every early item has expired when the schedules start: the first sweep finds them all.
    let early_expired = seeded
        .iter()
        .filter(|s| !s.late)
        .map(|s| s.expires_at)
        .max()
        .unwrap();
    if let Ok(wait) = (early_expired - Utc::now()).to_std() {
        tokio::time::sleep(wait + Duration::from_millis(500)).await;
    }

    // ---- Three replicas with the same schedule. ----
    let mut replicas: Vec<Cairn> = (1..=3)
        .map(|i| Cairn::start(&format!("replica{i}"), &database_url, &bucket, true))
        .collect();
    for r in &mut replicas {
        r.ready().await;
    }
    let replicas_up = Instant::now();
    let late: Vec<&Seeded> = seeded.iter().filter(|s| s.late).collect();
    let late_ids: HashSet<Uuid> = late.iter().map(|s| s.id).collect();
    eprintln!(
        "replicas up (pids {:?}); {} items expire early, {} late",
        replicas.iter().map(Cairn::pid).collect::<Vec<_>>(),
        ITEMS - late.len(),
        late.len()
    );

    // The early items go; the late ones, some on the objects of early ones, stay readable.
    let deadline = replicas_up + Duration::from_secs(90);
    loop {
        let left: Vec<Uuid> = artifact::Entity::find()
            .select_only()
            .column(artifact::Column::ArtifactId)
            .into_tuple()
            .all(&db)
            .await
            .unwrap();
        if left.iter().all(|id| late_ids.contains(id)) {
            eprintln!(
                "early items purged {:.1?} after the replicas started; {} left",
                replicas_up.elapsed(),
                left.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} early items still in the catalog after 90 s",
            left.len() - left.iter().filter(|id| late_ids.contains(id)).count()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let margin = Utc::now() + chrono::Duration::seconds(5);
    let readable: Vec<&Seeded> = late
        .iter()
        .copied()
        .filter(|s| s.expires_at > margin)
        .collect();
    let apis: Vec<Api> = replicas
        .iter()
        .map(|r| Api::new(&client, &r.base))
        .collect();
    for (i, s) in readable.iter().enumerate() {
        let gr = &groups[s.group];
        let (status, body) = apis[i % apis.len()].content(gr, s.id).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "late item {} of group {}",
            s.id,
            s.group
        );
        assert_eq!(body, *gr.bytes, "late item {} of group {}", s.id, s.group);
    }
    eprintln!(
        "{} of {} late items read back before they expired",
        readable.len(),
        late.len()
    );

    // Then everything goes, objects included.
    let deadline = Instant::now() + Duration::from_secs(LATE_SECS as u64 + 90);
    loop {
        let (a, b) = (count_artifacts(&db).await, count_blobs(&db).await);
        if a == 0 && b == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {a} artifacts and {b} blobs in the catalog"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "all purged {:.1?} after the replicas started",
        replicas_up.elapsed()
    );
    // A few more ticks with nothing to do.
    tokio::time::sleep(Duration::from_secs(3 * PERIOD_SECS as u64 + 1)).await;

    // The runs, at a moment none is in progress.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let runs = lifecycle_run::Entity::find().all(&db).await.unwrap();
        if runs
            .iter()
            .all(|r| r.status != lifecycle_run::STATUS_RUNNING)
        {
            break runs;
        }
        assert!(Instant::now() < deadline, "a run is always in progress");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Let the other replicas' log lines for the last tick arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for r in &mut replicas {
        assert!(r.alive(), "{} exited", r.name);
    }

    let pids: HashMap<u32, usize> = replicas
        .iter()
        .enumerate()
        .map(|(i, r)| (r.pid(), i))
        .collect();
    let mut runs = runs;
    runs.sort_by_key(|r| r.tick);
    let mut table = String::new();
    let mut reports = Vec::new();
    for r in &runs {
        let report: Report = serde_json::from_value(r.report.clone()).unwrap();
        let who = pids
            .get(&holder_pid(&r.holder))
            .map(|i| replicas[*i].name.clone())
            .unwrap_or_else(|| r.holder.clone());
        table.push_str(&format!(
            "{} {:<9} {:<9} {}..{} expired {:>4} purged {:>4} objects {:>4} pending {} errors {:?} {}\n",
            r.tick.map(|t| t.to_string()).unwrap_or_default(),
            who,
            r.status,
            r.started_at.format("%H:%M:%S%.3f"),
            r.finished_at
                .map(|f| f.format("%H:%M:%S%.3f").to_string())
                .unwrap_or_default(),
            report.expired.count,
            report.purged.count,
            report.objects_deleted.count,
            report.objects_pending,
            report.errors,
            r.error.clone().unwrap_or_default(),
        ));
        reports.push(report);
    }
    eprintln!("lifecycle runs:\n{table}");

    // One run per tick, each a scheduled one on a tick of the cron, none failed.
    assert!(runs.len() >= 3, "too few runs:\n{table}");
    let ticks: HashSet<DateTime<Utc>> = runs.iter().filter_map(|r| r.tick).collect();
    assert_eq!(
        ticks.len(),
        runs.len(),
        "a tick without or with two runs:\n{table}"
    );
    for r in &runs {
        assert_eq!(r.trigger, "schedule", "{table}");
        assert!(!r.dry_run);
        let t = r.tick.unwrap();
        assert!(
            t.timestamp() % PERIOD_SECS == 0 && t.timestamp_subsec_nanos() == 0,
            "tick {t} is not one of `{CRON}`"
        );
        assert!(
            [
                lifecycle_run::STATUS_SUCCEEDED,
                lifecycle_run::STATUS_SKIPPED
            ]
            .contains(&r.status.as_str()),
            "run at {t} is {}: {:?}\n{table}",
            r.status,
            r.error
        );
        assert!(
            pids.contains_key(&holder_pid(&r.holder)),
            "run at {t} held by {}, none of the replicas",
            r.holder
        );
    }
    // No delete errors, nothing left pending, every item purged once over all runs.
    for (r, report) in runs.iter().zip(&reports) {
        assert!(
            report.errors.is_empty() && report.errors_omitted == 0,
            "errors at {:?}\n{table}",
            r.tick
        );
        assert_eq!(report.objects_pending, 0, "{table}");
        assert_eq!(report.orphans.found.count, 0, "{table}");
        assert_eq!(report.abandoned.count, 0, "{table}");
    }
    let total = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    assert_eq!(total(|r| r.expired.count), ITEMS as u64, "{table}");
    assert_eq!(total(|r| r.retention.count), 0, "{table}");
    assert_eq!(total(|r| r.purged.count), ITEMS as u64, "{table}");
    assert_eq!(total(|r| r.objects_deleted.count), GROUPS as u64, "{table}");
    let sweeping = reports.iter().filter(|r| r.purged.count > 0).count();
    eprintln!("{sweeping} runs purged items");

    // The event log: each item soft-deleted once and purged once, each object removed once.
    let deleted = subjects(&db, "artifact.deleted").await;
    let purged = subjects(&db, "artifact.purged").await;
    let removed = subjects(&db, "object.removed").await;
    assert_eq!(deleted.keys().copied().collect::<HashSet<_>>(), ids);
    assert_eq!(purged.keys().copied().collect::<HashSet<_>>(), ids);
    assert_eq!(removed.keys().copied().collect::<HashSet<_>>(), blob_ids);
    for (what, counts) in [
        ("soft-deleted", &deleted),
        ("purged", &purged),
        ("removed", &removed),
    ] {
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "{what} more than once: {twice:?}");
    }
    assert_eq!(count_artifacts(&db).await, 0);
    assert_eq!(count_blobs(&db).await, 0);
    let keys = bucket_keys(&bucket).await;
    assert!(keys.is_empty(), "objects left in the bucket: {keys:?}");

    // Every replica fired on the schedule; for each tick exactly one claimed it (the run's
    // holder, `skipped` if another sweep held the lease) and the others stood aside.
    let mut by_tick: BTreeMap<String, Vec<(usize, Firing)>> = BTreeMap::new();
    for (i, r) in replicas.iter().enumerate() {
        let f = firings(r);
        let failed: Vec<_> = f.iter().filter(|(_, w)| *w == Firing::Failed).collect();
        assert!(failed.is_empty(), "{} failed firings: {failed:?}", r.name);
        let errors: Vec<String> = r
            .lines()
            .into_iter()
            .filter(|l| l.contains("\"level\":\"ERROR\""))
            .collect();
        assert!(errors.is_empty(), "{} logged errors: {errors:#?}", r.name);
        eprintln!(
            "{}: {} firings ({} ran, {} busy, {} taken by another)",
            r.name,
            f.len(),
            f.iter().filter(|(_, w)| *w == Firing::Ran).count(),
            f.iter().filter(|(_, w)| *w == Firing::Busy).count(),
            f.iter().filter(|(_, w)| *w == Firing::Taken).count(),
        );
        assert!(f.len() >= 3, "{} fired {} times", r.name, f.len());
        for (tick, what) in f {
            by_tick.entry(tick).or_default().push((i, what));
        }
    }
    let run_at: HashMap<String, &lifecycle_run::Model> = runs
        .iter()
        .map(|r| (r.tick.unwrap().to_string(), r))
        .collect();
    let last = runs.last().unwrap().tick.unwrap().to_string();
    let mut together = 0;
    for (tick, fired) in by_tick.range(..=last) {
        let run = run_at
            .get(tick)
            .unwrap_or_else(|| panic!("replicas fired for {tick} but no run records it"));
        let claims: Vec<_> = fired
            .iter()
            .filter(|(_, w)| matches!(w, Firing::Ran | Firing::Busy))
            .collect();
        assert_eq!(claims.len(), 1, "tick {tick}: {fired:?}\n{table}");
        let (i, what) = *claims[0];
        assert_eq!(replicas[i].pid(), holder_pid(&run.holder), "tick {tick}");
        assert_eq!(
            what == Firing::Busy,
            run.status == lifecycle_run::STATUS_SKIPPED,
            "tick {tick}: {what:?}, run {}",
            run.status
        );
        // (A replica that fires late may name a tick twice; it then finds the tick taken.)
        let who: HashSet<usize> = fired.iter().map(|(i, _)| *i).collect();
        if who.len() == replicas.len() {
            together += 1;
        }
    }
    for tick in run_at.keys() {
        assert!(by_tick.contains_key(tick), "no replica logged tick {tick}");
    }
    assert!(
        together > 0,
        "the replicas never fired for the same tick: {by_tick:#?}"
    );
    eprintln!(
        "{together} of {} ticks saw all three replicas fire",
        run_at.len()
    );

    // Sweeps never overlap (the lease): a run began sweeping (it logs that once it holds the
    // lease) only after every earlier run had finished, and no sweep found another's run
    // `running` and closed it as interrupted.
    let mut began: HashMap<Uuid, (DateTime<Utc>, &str)> = HashMap::new();
    let mut closed = Vec::new();
    for r in &replicas {
        for e in r.entries() {
            let f = &e["fields"];
            if f["job"] != "lifecycle" {
                continue;
            }
            if f["message"] == "closed runs whose process stopped mid-run" {
                closed.push(format!(
                    "{} at {}: {} runs",
                    r.name, e["timestamp"], f["runs"]
                ));
            }
            if f["message"] != "job run started" {
                continue;
            }
            let id: Uuid = f["run.id"].as_str().unwrap().parse().unwrap();
            let at = DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc);
            began.insert(id, (at, r.name.as_str()));
        }
    }
    let swept: Vec<&lifecycle_run::Model> = runs
        .iter()
        .filter(|r| r.status != lifecycle_run::STATUS_SKIPPED)
        .collect();
    for (j, b) in swept.iter().enumerate() {
        let (at, who) = began
            .get(&b.id)
            .unwrap_or_else(|| panic!("no replica logged the start of run {}", b.id));
        for a in &swept[..j] {
            let done = a.finished_at.unwrap();
            assert!(
                *at >= done,
                "sweeps overlapped: {who} began the sweep of tick {} at {at} while the sweep of \
                 tick {} (holder {}) ran until {done}; the lease did not keep them apart\n{table}",
                b.tick.unwrap(),
                a.tick.unwrap(),
                a.holder,
            );
        }
    }
    assert!(
        closed.is_empty(),
        "runs closed as interrupted, but no replica stopped: {closed:?}\n{table}"
    );
}
