//! `App`: what every handler and job shares, behind one `AppState(Arc<App>)`.
use std::{ops::Deref, sync::Arc};

use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;

use crate::{
    auth::Verifier,
    cdn::Cdn,
    config::Config,
    domain::artifacts::{verify::VerifyQueue, Changes},
    lifecycle::Lifecycle,
    metering::{buffer::UsageBuffer, Metering},
    storage::{local::LocalStore, ObjectStore},
};

pub struct App {
    pub db: DatabaseConnection,
    pub store: Arc<dyn ObjectStore>,
    /// The local backend, when it is the store: it also serves the `/o/` endpoint.
    pub local: Option<Arc<LocalStore>>,
    pub config: Config,
    /// Delivery URLs and CloudFront signing.
    pub cdn: Cdn,
    /// The base of URLs for Cairn's own endpoints, without a trailing slash.
    pub public_url: String,
    pub verifier: Verifier,
    pub metrics: PrometheusHandle,
    /// Wakes long-polls when an artifact changes status.
    pub changes: Changes,
    /// Completed multipart uploads waiting to be hashed.
    pub verify_queue: VerifyQueue,
    /// The lifecycle sweep's context (the scheduler and `POST /admin/lifecycle/run`).
    pub lifecycle: Arc<Lifecycle>,
    /// The metering job's context (the scheduler and the operator API).
    pub metering: Arc<Metering>,
    /// Download URLs handed out and bytes served, counted on reads and recorded in batches.
    pub usage_buffer: Arc<UsageBuffer>,
}

impl App {
    /// Records the usage counted on reads now (the server also does every few seconds and when
    /// it stops).
    pub async fn flush_usage(&self) -> Result<usize, sea_orm::DbErr> {
        self.usage_buffer.flush(&self.db).await
    }
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
