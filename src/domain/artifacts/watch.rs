//! Long-polling an artifact (`GET /artifacts/{id}?wait=N`): waiters sleep on a broadcast of status
//! changes made by this process and wake the moment their artifact changes. Changes made by
//! another replica are seen by a re-read every [`REREAD`], so the catalog is never polled in a
//! tight loop.
use std::time::Duration;

use entity::artifact;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{app::App, auth::Scope, error::ApiResult};

/// How often a waiter re-reads the catalog when nothing in this process woke it.
const REREAD: Duration = Duration::from_secs(2);

/// Status changes of artifacts in this process.
#[derive(Clone)]
pub struct Changes(broadcast::Sender<Uuid>);

impl Default for Changes {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl Changes {
    pub fn notify(&self, id: Uuid) {
        // No receiver is not an error: nobody is waiting.
        let _ = self.0.send(id);
    }

    fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.0.subscribe()
    }
}

fn settled(a: &artifact::Model) -> bool {
    a.status != artifact::STATUS_PENDING && a.status != artifact::STATUS_UPLOADING
}

/// The artifact once it has left `pending`/`uploading`, or as it is when `wait` runs out.
pub async fn wait(
    app: &App,
    scope: &Scope,
    id: Uuid,
    wait: Duration,
) -> ApiResult<artifact::Model> {
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut rx = app.changes.subscribe();
    let mut current = super::get(app, scope, id).await?;
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
        current = super::get(app, scope, id).await?;
    }
    Ok(current)
}
