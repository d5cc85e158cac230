//! Long-polling an artifact (`GET /artifacts/{id}?wait=N`): waiters sleep on a broadcast of status
//! changes made by this process and wake the moment their artifact changes. Changes made by
//! another replica are seen by a re-read every [`REREAD`], so the catalog is never polled in a
//! tight loop.
use std::time::Duration;

use entity::artifact;
use tokio::sync::broadcast;
use uuid::Uuid;

pub use crate::core::Changes;
use crate::{auth::Scope, core::Core, problem::Result};

/// How often a waiter re-reads the catalog when nothing in this process woke it.
const REREAD: Duration = Duration::from_secs(2);

fn settled(a: &artifact::Model) -> bool {
    a.status != artifact::STATUS_PENDING && a.status != artifact::STATUS_UPLOADING
}

/// The artifact once it has left `pending`/`uploading`, or as it is when `wait` runs out.
pub async fn wait(core: &Core, scope: &Scope, id: Uuid, wait: Duration) -> Result<artifact::Model> {
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut rx = core.changes.subscribe();
    let mut current = super::get(core, scope, id).await?;
    let deadline = tokio::time::Instant::now() + wait;
    while !settled(&current) {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        let nap = (deadline - now).min(REREAD);
        // Woken or not, re-read: the catalog is the truth.
        let _ = tokio::time::timeout(nap, async {
            loop {
                match rx.recv().await {
                    Ok(changed) if changed == id => return,
                    Ok(_) => continue,
                    // Missed some changes: re-read to be sure.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
        current = super::get(core, scope, id).await?;
    }
    Ok(current)
}
