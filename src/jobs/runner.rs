//! The runner: [`execute`] runs one run of a [`Job`] (the scheduler's, the CLI's and the API's
//! alike), and [`Runner`] fires scheduled jobs on every replica.
//!
//! One run, in this order for every job:
//! 1. **claim the tick** (scheduled runs): insert the run's row; the tick column is unique, so
//!    the replica whose insert wins runs the tick and the others stand aside ([`RunError::TickTaken`]).
//! 2. **take the lease** ([`Lease`], the job's name). Held by another run (the previous tick's
//!    run outlasted the period, or an API run): a claimed tick's row is closed `skipped`, naming
//!    the holder, and the run ends [`RunError::Busy`].
//!
//!    Claim first, then lease: each tick then leaves exactly one row that says what became of
//!    it (ran or skipped), whatever the replicas did, and only the claim's winner touches the
//!    lease, so replicas firing together never contend for it. The other order (metering's
//!    before the runner) left a busy tick without a record and let every replica log it.
//! 3. **close interrupted runs**: rows still `running` belong to a process that died mid-run
//!    (the lease says no other run goes on); they become `failed`.
//! 4. **run** with a heartbeat that renews the lease every tenth of its TTL; when renewal finds
//!    the lease lost (expired and taken), the job's stop token is cancelled and the run is
//!    recorded `failed`. Shutdown cancels the same token: the job stops at its next batch.
//! 5. **record** the outcome and release the lease.
use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::{sync::RwLock, task::JoinHandle};
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{lease::Held, record, Crash, Job, Lease, RunContext, Trigger, STATUS_SKIPPED};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a {} run is already going on {} (lease until {})", .0.name, .0.holder, .0.expires_at)]
    Busy(Held),
    #[error("another replica runs this tick")]
    TickTaken,
    #[error("catalog: {0}")]
    Db(#[from] DbErr),
    /// A simulated crash (tests): the run row stays `running` and the lease held.
    #[error("crashed: {0}")]
    Crashed(String),
}

/// A finished run: its row in the job's [`record::RunLog`].
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub id: Uuid,
    pub status: &'static str,
}

/// Runs `job` once as of `now` (see the module documentation). `stop` is the caller's
/// shutdown: cancelling it stops the job at its next batch.
pub async fn execute<J: Job>(
    job: &J,
    trigger: Trigger,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Finished, RunError> {
    let db = job.catalog();
    let log = job.runs();
    let empty = || serde_json::json!(J::Report::default());
    let claimed = match trigger {
        Trigger::Schedule(_) => {
            match record::start(db, log, &trigger, job.dry_run(), job.holder(), empty()).await? {
                Some(id) => Some(id),
                None => return Err(RunError::TickTaken),
            }
        }
        _ => None,
    };
    let lease = Lease::for_run(job.name(), job.holder(), job.lease_ttl());
    if let Err(held) = lease.acquire(db).await? {
        if let Some(id) = claimed {
            let why = format!("a {} run was still going on {}", job.name(), held.holder);
            record::finish(db, log, id, STATUS_SKIPPED, empty(), Some(why)).await?;
        }
        return Err(RunError::Busy(held));
    }
    let id = match claimed {
        Some(id) => id,
        None => {
            match record::start(db, log, &trigger, job.dry_run(), job.holder(), empty()).await {
                Ok(Some(id)) => id,
                Ok(None) => unreachable!("only a scheduled tick can be taken"),
                Err(e) => {
                    lease.release(db).await.ok();
                    return Err(e.into());
                }
            }
        }
    };
    match record::close_interrupted(db, log, id).await {
        Ok(0) => {}
        Ok(runs) => tracing::warn!(
            job = job.name(),
            runs,
            "closed runs whose process stopped mid-run"
        ),
        // The next run tries again; this one goes on.
        Err(e) => tracing::warn!(job = job.name(), error = %e, "could not close interrupted runs"),
    }
    tracing::info!(job = job.name(), run.id = %id, trigger = trigger.name(), dry_run = job.dry_run(), %now, "job run started");
    let cx = RunContext {
        stop: stop.child_token(),
    };
    let beat = Heartbeat::start(db.clone(), lease.clone(), cx.stop.clone());
    let outcome = job.run(&cx, trigger, now).await;
    let lost = beat.stop();
    let mut outcome = match outcome {
        Ok(o) => o,
        Err(Crash(why)) => return Err(RunError::Crashed(why)),
    };
    if lost && outcome.status != super::STATUS_SUCCEEDED {
        outcome.status = super::STATUS_FAILED;
        outcome.error = Some(format!(
            "the {} lease was lost to another replica; stopped",
            job.name()
        ));
    }
    let done = record::finish(
        db,
        log,
        id,
        outcome.status,
        serde_json::json!(outcome.report),
        outcome.error.clone(),
    )
    .await;
    if let Err(e) = lease.release(db).await {
        tracing::warn!(job = job.name(), error = %e, "could not release the lease; it expires on its own");
    }
    done?;
    metrics::counter!("cairn_job_runs_total", "job" => job.name(), "status" => outcome.status)
        .increment(1);
    tracing::info!(job = job.name(), run.id = %id, status = outcome.status, error = outcome.error.as_deref(), "job run finished");
    Ok(Finished {
        id,
        status: outcome.status,
    })
}

/// Renews a run's lease every tenth of its TTL until stopped (dropped with the run, so a
/// crashed run's lease stays held until it expires).
struct Heartbeat {
    task: JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    fn start(db: DatabaseConnection, lease: Lease, stop: CancellationToken) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let every = (lease.ttl / 10)
            .to_std()
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut beats = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                beats.tick().await;
                match lease.renew(&db).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(
                            lease = lease.name,
                            "the lease was lost to another replica; the run stops"
                        );
                        flag.store(true, Ordering::SeqCst);
                        stop.cancel();
                        return;
                    }
                    // The catalog may be busy (SQLite's one connection held by a long
                    // transaction): the next beat tries again, well before the lease ends.
                    Err(e) => {
                        tracing::warn!(lease = lease.name, error = %e, "could not renew the lease")
                    }
                }
            }
        });
        Self { task, lost }
    }

    /// Stops renewing; whether the lease was lost meanwhile.
    fn stop(self) -> bool {
        self.task.abort();
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When a scheduled job fires.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron schedule, as the configuration parsed it.
    Cron(Box<crate::config::Schedule>),
    /// Every period, the first at once; a tick is the period's start since the epoch.
    Every(Duration),
}

/// The cron tick a firing at `now` belongs to: the latest scheduled instant not after it.
/// Replicas that fire a little apart name the same tick.
pub fn tick_of(cron: &croner::Cron, now: DateTime<Utc>) -> DateTime<Utc> {
    // Whole seconds: cron's resolution (croner answers a matching instant itself, fraction kept).
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    cron.find_previous_occurrence(&now, true)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

/// The start of the period of `every` that holds `now` (counted from the epoch).
fn slot_of(every: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let period = every.as_micros().max(1) as i64;
    let at = now.timestamp_micros();
    DateTime::from_timestamp_micros(at - at.rem_euclid(period)).unwrap_or(now)
}

/// Fires scheduled jobs on this replica until `shutdown` is cancelled.
pub struct Runner {
    sched: JobScheduler,
    shutdown: CancellationToken,
    /// Held (read) by each run in progress; taken (write) once stopping, to wait for them.
    running: Arc<RwLock<()>>,
    /// The `Every` schedules, spawned by [`Runner::start`].
    loops: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Runner {
    pub async fn new(shutdown: CancellationToken) -> anyhow::Result<Self> {
        Ok(Self {
            sched: JobScheduler::new().await?,
            shutdown,
            running: Arc::new(RwLock::new(())),
            loops: Vec::new(),
        })
    }

    /// Schedules `job`; it fires once [`Runner::start`] is called.
    pub async fn add<J: Job + 'static>(
        &mut self,
        schedule: Schedule,
        job: J,
    ) -> anyhow::Result<()> {
        let name = job.name();
        let job = Arc::new(job);
        let (shutdown, running) = (self.shutdown.clone(), self.running.clone());
        match schedule {
            Schedule::Cron(schedule) => {
                let (expr, cron) = (schedule.as_str().to_owned(), schedule.cron().clone());
                let fire = CronJob::new_async(expr.as_str(), move |_id, _sched| {
                    let (job, cron) = (job.clone(), cron.clone());
                    let (shutdown, running) = (shutdown.clone(), running.clone());
                    Box::pin(async move {
                        let now = Utc::now();
                        fire(&*job, tick_of(&cron, now), now, &shutdown, &running).await;
                    })
                })?;
                self.sched.add(fire).await?;
                tracing::info!(job = name, cron = %expr, "job scheduled");
            }
            Schedule::Every(every) => {
                let every = every.max(Duration::from_millis(1));
                tracing::info!(
                    job = name,
                    every_ms = every.as_millis() as u64,
                    "job scheduled"
                );
                self.loops.push(Box::pin(async move {
                    let mut ticks = tokio::time::interval(every);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = ticks.tick() => {}
                        }
                        let now = Utc::now();
                        fire(&*job, slot_of(every, now), now, &shutdown, &running).await;
                    }
                }));
            }
        }
        Ok(())
    }

    /// Starts the schedules. The handle ends once `shutdown` was cancelled, the schedules have
    /// stopped and the runs in progress have stopped at their next batch.
    pub async fn start(mut self) -> anyhow::Result<JoinHandle<()>> {
        self.sched.start().await?;
        let loops: Vec<JoinHandle<()>> = self.loops.into_iter().map(tokio::spawn).collect();
        Ok(tokio::spawn(async move {
            self.shutdown.cancelled().await;
            if let Err(e) = self.sched.shutdown().await {
                tracing::warn!(error = %e, "stopping the job schedule");
            }
            for l in loops {
                l.await.ok();
            }
            let _all_stopped = self.running.write().await;
            tracing::info!("background jobs stopped");
        }))
    }
}

/// One scheduled firing: runs the tick (see [`execute`]) and logs what became of it.
async fn fire<J: Job>(
    job: &J,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
    shutdown: &CancellationToken,
    running: &Arc<RwLock<()>>,
) {
    let Ok(_running) = running.clone().try_read_owned() else {
        return; // stopping: the runner waits for the runs in progress.
    };
    if shutdown.is_cancelled() {
        return;
    }
    let name = job.name();
    match execute(job, Trigger::Schedule(tick), now, shutdown).await {
        Ok(r) => {
            tracing::debug!(job = name, run.id = %r.id, %tick, status = r.status, "scheduled run done")
        }
        Err(RunError::TickTaken) => {
            tracing::debug!(job = name, %tick, "another replica runs this tick")
        }
        Err(e @ RunError::Busy(_)) => tracing::info!(job = name, %tick, "{e}"),
        Err(e) => tracing::error!(job = name, %tick, error = %e, "scheduled run failed"),
    }
}
