//! `App`: what every handler shares, behind one `AppState(Arc<App>)`: the domain's [`Core`]
//! (which `App` derefs to) and the parts only the HTTP server needs.
use std::{ops::Deref, sync::Arc};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::{
    auth::Verifier, config::Config, core::Core, lifecycle::Lifecycle, metering::Metering,
    storage::local::LocalStore,
};

pub struct App {
    /// What the domain services take.
    pub core: Arc<Core>,
    /// The local backend, when it is the store: it also serves the `/o/` endpoint.
    pub local: Option<Arc<LocalStore>>,
    pub config: Config,
    pub verifier: Verifier,
    pub metrics: PrometheusHandle,
    /// The lifecycle sweep's context (the scheduler and `POST /admin/lifecycle/run`).
    pub lifecycle: Arc<Lifecycle>,
    /// The metering job's context (the scheduler and the operator API).
    pub metering: Arc<Metering>,
}

impl Deref for App {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
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
