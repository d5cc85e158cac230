//! The lifecycle schedule: tokio-cron-scheduler fires on every replica at each tick of
//! `CAIRN_LIFECYCLE_CRON`; [`super::run`] claims the tick in the catalog, so one replica sweeps.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::{run, Lifecycle, RunError, SweepOptions, Trigger};

/// The cron tick a firing at `now` belongs to: the latest scheduled instant not after it.
/// Replicas that fire a little apart name the same tick.
pub fn tick_of(cron: &croner::Cron, now: DateTime<Utc>) -> DateTime<Utc> {
    // Whole seconds: cron's resolution (croner answers a matching instant itself, fraction kept).
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    cron.find_previous_occurrence(&now, true)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

/// Starts the schedule; it stops when `shutdown` is cancelled, and a sweep in progress stops at
/// its next batch.
pub async fn start(lc: Arc<Lifecycle>, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Parsed once, by the configuration.
    let (expr, cron) = (
        lc.config.cron.as_str().to_owned(),
        lc.config.cron.cron().clone(),
    );
    let mut sched = JobScheduler::new().await?;
    let stop = shutdown.clone();
    let job = Job::new_async(expr.as_str(), move |_id, _sched| {
        let lc = lc.clone();
        let cron = cron.clone();
        let stop = stop.clone();
        Box::pin(async move {
            let now = Utc::now();
            let tick = tick_of(&cron, now);
            let opts = SweepOptions {
                stop: Some(stop),
                ..Default::default()
            };
            match run(&lc, Trigger::Schedule(tick), &opts, now).await {
                Ok(r) => tracing::debug!(run.id = %r.id, %tick, "scheduled sweep done"),
                Err(RunError::TickTaken) => {
                    tracing::debug!(%tick, "another replica runs this lifecycle tick")
                }
                Err(e @ RunError::Busy(_)) => tracing::info!(%tick, "{e}"),
                Err(e) => tracing::error!(%tick, error = %e, "scheduled lifecycle sweep failed"),
            }
        })
    })?;
    sched.add(job).await?;
    sched.start().await?;
    tracing::info!(cron = %expr, "lifecycle schedule started");
    tokio::spawn(async move {
        shutdown.cancelled().await;
        if let Err(e) = sched.shutdown().await {
            tracing::warn!(error = %e, "stopping the lifecycle schedule");
        }
    });
    Ok(())
}
