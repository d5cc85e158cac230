//! Cairn: a multi-tenant artifact store. `main.rs` only parses the command line; everything it
//! starts is built here, so tests start exactly what production starts.
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
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
mod open;
pub mod problem;
pub mod signer;
pub mod storage;
pub mod telemetry;
pub mod usage;
pub mod values;

use crate::core::{Changes, Core, VerifyQueue};
use app::{App, AppState};
use config::{Config, StorageConfig};
use open::{cdn_log_store, lifecycle_of, metering_of, open_local};
pub use open::{connect, existing_catalog, lifecycle_for_cli, migrate, usage_catalog_for_cli};
use storage::{local::LocalStore, ObjectStore};

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
        let read = open::connect_reader(&config, &db).await?;
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
            writer: crate::core::Writer::spawn(db.clone()),
            db,
            read,
            store,
            cdn,
            public_url,
            changes: Changes::default(),
            blob_keys: Default::default(),
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
        self.state.read.clone().close().await.ok();
        self.state.db.clone().close().await.ok();
        tracing::info!("cairn stopped");
        Ok(())
    }
}
