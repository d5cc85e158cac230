//! Cairn: a multi-tenant artifact store. `main.rs` only parses the command line; everything it
//! starts is built here, so tests start exactly what production starts.
use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tokio::net::TcpListener;

pub mod app;
pub mod auth;
pub mod cdn;
pub mod config;
pub mod core;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod metering;
pub mod problem;
pub mod signer;
pub mod storage;
pub mod telemetry;
pub mod usage;
pub mod values;

use crate::core::{Changes, Core, VerifyQueue};
use app::{App, AppState};
use config::{Config, Secret, StorageConfig};
use storage::{local::LocalStore, s3::S3Store, ObjectStore};

/// Connects to the catalog. SQLite runs in WAL mode on a single connection: one writer is all
/// SQLite allows, and a single connection never meets `SQLITE_BUSY`.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose();
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(if sqlite { 1 } else { 16 })
        .min_connections(if sqlite { 1 } else { 0 });
    let db = Database::connect(opts)
        .await
        .with_context(|| "cannot connect to the catalog (DATABASE_URL)")?;
    if sqlite {
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        )
        .await?;
    }
    Ok(db)
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migration::Migrator::up(db, None)
        .await
        .context("applying catalog migrations")
}

/// What `cairn lifecycle run` needs: the store and the existing catalog, without a server.
/// `config` as start-up left it ([`Config::provision`]): the local store's key read.
pub async fn lifecycle_for_cli(config: &Config) -> anyhow::Result<lifecycle::Lifecycle> {
    let (store, _) = open_store(config).await?;
    let db = existing_catalog(config).await?;
    Ok(lifecycle_of(db, store, config))
}

/// The object store of a CLI command (checked to answer), and on S3 the S3 store it is.
async fn open_store(
    config: &Config,
) -> anyhow::Result<(Arc<dyn ObjectStore>, Option<Arc<S3Store>>)> {
    let (store, s3): (Arc<dyn ObjectStore>, _) = match &config.storage {
        StorageConfig::S3(s3) => {
            let store = storage::s3::connect(s3, config.multipart_threshold).await?;
            store.check_ready().await.with_context(|| {
                format!("the object store (bucket {}) does not answer", s3.bucket)
            })?;
            let store = Arc::new(store);
            (store.clone(), Some(store))
        }
        StorageConfig::Local { root, signing_key } => {
            let public_url = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.listen));
            (
                Arc::new(open_local(root, &public_url, signing_key.secret()?)?),
                None,
            )
        }
    };
    Ok((store, s3))
}

/// What `cairn usage` needs: the existing catalog with its usage counters. Not the store:
/// reports and the reconcile check read the catalog alone, so they work while the store is down.
pub async fn usage_catalog_for_cli(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = existing_catalog(config).await?;
    metering::backfill_if_new(&db).await?;
    Ok(db)
}

/// The catalog of a command other than `serve` and `migrate`: it must exist and have been
/// migrated (by a server or `cairn migrate`), else [`config::ConfigError::NoDeployment`]; a
/// SQLite file is never created and an empty database never given tables. Migrations the
/// catalog lacks are applied, as a server would.
pub async fn existing_catalog(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose();
    if let Some(file) = config::sqlite_file(url) {
        if !file.is_file() {
            return Err(config::ConfigError::NoDeployment(format!(
                "the catalog {} does not exist (DATABASE_URL; unset: cairn.db in CAIRN_DATA_DIR)",
                file.display()
            ))
            .into());
        }
    }
    let db = connect(config).await?;
    let migrated = migration::SchemaManager::new(&db)
        .has_table("seaql_migrations")
        .await
        .context("reading the catalog (DATABASE_URL)")?;
    if !migrated {
        db.close().await.ok();
        return Err(config::ConfigError::NoDeployment(format!(
            "the catalog {} has no tables: no server or `cairn migrate` ever ran on it",
            config::describe_catalog(url)
        ))
        .into());
    }
    migrate(&db).await?;
    Ok(db)
}

/// The store CloudFront's logs are read from: the log bucket `CAIRN_CDN_LOG_PREFIX` names
/// (`s3://<bucket>/...`) through the S3 store's own client and credentials, else the object
/// store. [`Config`] refuses a log bucket without the S3 store.
fn cdn_log_store(
    config: &Config,
    store: &Arc<dyn ObjectStore>,
    s3: Option<&Arc<S3Store>>,
) -> Arc<dyn ObjectStore> {
    match (&config.metering.cdn_log_bucket, s3) {
        (Some(bucket), Some(s3)) => Arc::new(s3.for_bucket(bucket)),
        _ => store.clone(),
    }
}

fn open_local(root: &Path, public_url: &str, signing_key: &Secret) -> anyhow::Result<LocalStore> {
    LocalStore::open(root, public_url, signing_key.expose().as_bytes())
        .with_context(|| format!("cannot open the object directory {}", root.display()))
}

/// The sweep's context for this process (the server's scheduler and API, or the CLI).
fn lifecycle_of(
    db: DatabaseConnection,
    store: Arc<dyn ObjectStore>,
    config: &Config,
) -> lifecycle::Lifecycle {
    lifecycle::Lifecycle {
        db,
        store,
        config: config.lifecycle.clone(),
        invalidate: config.cdn.invalidation.is_some(),
        holder: jobs::holder_id(),
    }
}

/// The metering job's context for this process; `logs`: the store CloudFront's logs are in
/// ([`cdn_log_store`]).
fn metering_of(
    db: DatabaseConnection,
    logs: Arc<dyn ObjectStore>,
    config: &Config,
) -> metering::Metering {
    metering::Metering {
        db,
        store: logs,
        config: config.metering.clone(),
        envs: config.envs.clone(),
        holder: jobs::holder_id(),
    }
}

/// How long a temp file of the local store must have gone unmodified before a server starting up
/// removes it as abandoned. An upload still streaming writes to its file at least every 256 KiB
/// (the store's write buffer), which the default minimum pace (`CAIRN_BODY_MIN_RATE`, 1 KiB/s)
/// brings within about four minutes; a slower one is cut off with 408 anyway.
pub const ABANDONED_TEMP_FILE_AGE: Duration = Duration::from_secs(10 * 60);

/// Removes the temp files uploads killed with a previous process left in the local store. Only
/// the server does, at start-up: CLI commands open the store while a server may be running.
async fn remove_abandoned_temp_files(local: &LocalStore) {
    match local.remove_stale_temp_files(ABANDONED_TEMP_FILE_AGE).await {
        Ok((0, _)) => {}
        Ok((files, size_bytes)) => tracing::info!(
            files,
            size_bytes,
            "removed temp files of uploads interrupted by an earlier stop"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not look for abandoned temp files; the sweep reports them")
        }
    }
}

/// Schedules this replica's jobs (`CAIRN_JOBS`): the lifecycle sweep, the metering job and,
/// with a distribution, the CDN invalidation queue. They stop when `shutdown` is cancelled; the
/// handle ends once the runs in progress have stopped.
async fn start_jobs(
    state: &AppState,
    invalidator: Option<cdn::invalidation::Invalidator>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use jobs::{Runner, Schedule};
    let mut runner = Runner::new(shutdown).await?;
    let sweep = jobs::lifecycle::SweepJob {
        lc: (*state.lifecycle).clone(),
        opts: Default::default(),
    };
    runner
        .add(
            Schedule::Cron(Box::new(sweep.lc.config.cron.clone())),
            sweep,
        )
        .await?;
    let metering = jobs::metering::MeteringJob {
        m: (*state.metering).clone(),
        opts: Default::default(),
    };
    runner
        .add(
            Schedule::Cron(Box::new(metering.m.config.cron.clone())),
            metering,
        )
        .await?;
    if let Some(inv) = invalidator {
        let job = jobs::invalidations::InvalidationsJob {
            db: state.db.clone(),
            inv,
            holder: jobs::holder_id(),
        };
        runner
            .add(Schedule::Every(jobs::invalidations::EVERY), job)
            .await?;
    }
    runner.start().await
}

/// A built server: catalog migrated, listener bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Stops the background workers when the server stops.
    shutdown: tokio_util::sync::CancellationToken,
    /// The scheduled jobs (`CAIRN_JOBS`): ends once they have stopped.
    jobs: Option<tokio::task::JoinHandle<()>>,
}

/// How long a stopping server waits for a scheduled run to stop at its next batch and record how
/// it ended.
const JOBS_STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl Application {
    /// Provisions the data dir ([`config::Provision::Create`]), connects the store and the
    /// catalog, migrates it, binds the listener and starts the background workers.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let config = config.provision(config::Provision::Create)?;
        // The S3 chain (region, credentials) is checked first: a misconfigured store should stop
        // start-up before anything else happens.
        let s3 = match &config.storage {
            StorageConfig::S3(s3) => {
                let store = storage::s3::connect(s3, config.multipart_threshold).await?;
                if let Err(e) = store.check_ready().await {
                    tracing::warn!(error = %e, bucket = %s3.bucket, "the object store does not answer yet; /readyz will say so");
                }
                Some(Arc::new(store))
            }
            StorageConfig::Local { .. } => None,
        };
        // What this replica stores where, never with credentials: a deployment that meant S3
        // and got local disk (or another catalog) shows it in its first lines.
        let catalog = config::describe_catalog(config.database_url.expose());
        match (&config.storage, &s3) {
            (StorageConfig::S3(cfg), Some(store)) => tracing::info!(
                catalog,
                storage = "s3",
                bucket = %cfg.bucket,
                endpoint = %store.endpoint(),
                region = store.region().unwrap_or("-"),
                "catalog and object store"
            ),
            (StorageConfig::Local { root, .. }, _) => tracing::info!(
                catalog,
                storage = "local",
                objects = %root.display(),
                "catalog and object store"
            ),
            (StorageConfig::S3(_), None) => {}
        }
        // So is the CloudFront API's (region and credentials), when invalidations are configured.
        let invalidator = match &config.cdn.invalidation {
            Some(cfg) => Some(cdn::invalidation::Invalidator::connect(cfg).await?),
            None => None,
        };
        let db = connect(&config).await?;
        migrate(&db).await?;
        let mut config = config;
        config.server.max_connections = http::serve::connection_cap(
            config.server.max_connections,
            http::serve::raise_open_file_limit(),
        );
        metering::backfill_if_new(&db)
            .await
            .context("initialising usage counters")?;
        // Today's stored bytes and GB-days from now on, not from the first metering tick.
        match metering::snapshot::sample_missing(&db, chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(sampled) => {
                tracing::info!(
                    sampled,
                    "storage sampled at start-up: the day had no sample"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not take a storage sample at start-up; the metering job will")
            }
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot bind CAIRN_LISTEN={}", config.listen))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let (store, local): (Arc<dyn ObjectStore>, _) = match (&config.storage, s3.clone()) {
            (_, Some(s3)) => (s3, None),
            (StorageConfig::Local { root, signing_key }, None) => {
                let local = Arc::new(open_local(root, &public_url, signing_key.secret()?)?);
                remove_abandoned_temp_files(&local).await;
                (local.clone(), Some(local))
            }
            (StorageConfig::S3(_), None) => anyhow::bail!("the S3 store was not connected"),
        };
        let verifier = auth::Verifier::new(&config.jwt).context("CAIRN_JWT_PUBLIC_KEY")?;
        let cdn = cdn::Cdn::new(&config.cdn, &public_url, chrono::Utc::now())
            .context("CAIRN_CLOUDFRONT_PRIVATE_KEY")?;
        let (verify_queue, verify_rx) = VerifyQueue::new();
        let lifecycle = Arc::new(lifecycle_of(db.clone(), store.clone(), &config));
        let logs = cdn_log_store(&config, &store, s3.as_ref());
        let metering = Arc::new(metering_of(db.clone(), logs, &config));
        let usage_buffer = Arc::new(usage::buffer::UsageBuffer::default());
        let core = Arc::new(Core {
            db,
            store,
            cdn,
            public_url,
            changes: Changes::default(),
            verify_queue,
            usage_buffer: usage_buffer.clone(),
            presign_ttl_secs: config.presign_ttl_secs,
            multipart_threshold: config.multipart_threshold,
        });
        let state = AppState(Arc::new(App {
            core,
            local,
            config,
            verifier,
            metrics: http::metrics::handle(),
            lifecycle: lifecycle.clone(),
            metering: metering.clone(),
        }));
        let shutdown = tokio_util::sync::CancellationToken::new();
        jobs::verify::spawn(state.core.clone(), verify_rx, shutdown.clone());
        // Every replica records what its own reads counted, scheduled jobs or not.
        usage::buffer::spawn_flusher(
            usage_buffer,
            state.db.clone(),
            state.config.metering.usage_flush,
            shutdown.clone(),
        );
        let jobs = if state.config.jobs {
            let jobs = start_jobs(&state, invalidator, shutdown.clone())
                .await
                .context("starting the scheduled jobs")?;
            Some(jobs)
        } else {
            tracing::info!("CAIRN_JOBS=off: this replica runs no scheduled jobs");
            None
        };
        Ok(Self {
            listener,
            state,
            shutdown,
            jobs,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = self.state.config.server;
        tracing::info!(
            address = %self.local_addr(),
            public_url = %self.state.public_url,
            max_connections = limits.max_connections,
            header_timeout_secs = limits.header_timeout.as_secs(),
            keepalive_timeout_secs = limits.keepalive_timeout.as_secs(),
            body_timeout_secs = limits.body_timeout.as_secs(),
            body_min_rate = limits.body_min_rate,
            "cairn listening"
        );
        // Background workers stop when serving ends, however it ends.
        let _stop_workers = self.shutdown.clone().drop_guard();
        let router = http::router(self.state.clone());
        let served = http::serve::serve(self.listener, router, limits, shutdown).await;
        // Every response has ended: what the reads counted is complete.
        if let Err(e) = self.state.flush_usage().await {
            tracing::warn!(error = %e, "could not record the usage counted on reads at shutdown");
        }
        // Scheduled runs stop at their next batch and record how they ended before the catalog
        // closes.
        self.shutdown.cancel();
        if let Some(jobs) = self.jobs {
            if tokio::time::timeout(JOBS_STOP_TIMEOUT, jobs).await.is_err() {
                tracing::warn!("a scheduled job did not stop in time; its run stays `running` until the next run closes it");
            }
        }
        served?;
        self.state.db.clone().close().await.ok();
        tracing::info!("cairn stopped");
        Ok(())
    }
}
