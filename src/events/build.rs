//! The events of artifacts and raw assets as the services record them: the event row of one
//! item with its lineage, PII flags and training consent filled in from the catalog row. Callers
//! add a `detail` and record it in the transaction of the change.
use chrono::{DateTime, Utc};
use entity::{artifact, raw_asset};
use serde_json::{json, Value};

use super::Event;
use crate::auth::Scope;

/// The lineage refs of an artifact as events and the API show them.
pub fn lineage_json(a: &artifact::Model) -> Value {
    json!({
        "run_id": a.run_id,
        "workspace_id": a.workspace_id,
        "project_id": a.project_id,
        "canvas_id": a.canvas_id,
        "rev": a.rev,
        "correlation_id": a.correlation_id,
        "actor_id": a.actor_id,
        "derived_from": a.derived_from,
    })
}

/// An event about artifact `a`: its lineage, blob and kind.
pub fn artifact_event<'a>(
    k: &'static str,
    scope: &'a Scope,
    a: &artifact::Model,
    now: DateTime<Utc>,
) -> Event<'a> {
    let mut e = Event::new(k, scope, a.artifact_id, now);
    let mut lineage = lineage_json(a);
    lineage["blob_id"] = json!(a.blob_id);
    lineage["kind"] = json!(a.kind);
    e.lineage = lineage;
    e
}

/// An event about raw asset `a`: its blob and source, PII flags and training consent.
pub fn asset_event<'a>(
    k: &'static str,
    scope: &'a Scope,
    a: &raw_asset::Model,
    now: DateTime<Utc>,
) -> Event<'a> {
    let mut e = Event::new(k, scope, a.asset_id, now);
    e.lineage = json!({ "blob_id": a.blob_id, "source_ref": a.source_ref });
    e.pii_flags = a.pii_flags.clone();
    e.train_ok = Some(a.train_ok);
    e
}
