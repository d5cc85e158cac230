//! The upload verifier as a job: fed by the [`VerifyQueue`] (a multipart upload completed), not
//! by a schedule, and started with the work a previous process left ([`recover`]). At most
//! [`CONCURRENCY`] objects are hashed at once; an outage postpones an object by [`RETRY_AFTER`].
//! Every replica runs it, `CAIRN_JOBS` or not: it verifies what this replica's clients uploaded,
//! and running an object twice is harmless. Shutdown stops it taking work; what is left is
//! recovered at the next start. Its context is the domain's [`Core`].
//!
//! [`VerifyQueue`]: crate::core::VerifyQueue
use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    core::Core,
    domain::artifacts::verify::{recover, verify_one, worth_retry, CONCURRENCY},
};

/// How long to wait before retrying when the store or catalog is unavailable.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);

/// Works the queue until it closes or `shutdown` is cancelled: first the work a previous run
/// left, then what arrives.
pub fn spawn(
    core: Arc<Core>,
    mut rx: mpsc::UnboundedReceiver<Uuid>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = recover(&core).await {
            tracing::warn!(error = %e, "could not list unfinished verifications; they resume at the next start");
        }
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        loop {
            let id = tokio::select! {
                _ = shutdown.cancelled() => break,
                id = rx.recv() => match id {
                    Some(id) => id,
                    None => break,
                },
            };
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (core, shutdown) = (core.clone(), shutdown.clone());
            tokio::spawn(async move {
                let outcome = verify_one(&core, id).await;
                drop(permit);
                if let Err(e) = outcome {
                    if worth_retry(&e) {
                        tracing::warn!(artifact.id = %id, code = %e.code(), error = %e, "verification postponed");
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(RETRY_AFTER) => core.verify_queue.enqueue(id),
                        }
                    }
                }
            });
        }
        tracing::debug!("upload verifier stopped");
    })
}
