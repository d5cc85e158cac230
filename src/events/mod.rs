//! The dataset event log: one append-only row per state change, written in the same transaction
//! as the change itself; [`build`] makes the events of artifacts and raw assets, [`read`] pages
//! through the log.
use chrono::{DateTime, Utc};
use entity::dataset_event;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Scope;

pub mod build;
pub mod read;

pub use build::{artifact_event, asset_event};

/// Event types.
pub mod kind {
    pub const RAW_UPLOAD_PRESIGNED: &str = "raw.upload_presigned";
    pub const RAW_DEDUPLICATED: &str = "raw.deduplicated";
    pub const RAW_REGISTERED: &str = "raw.registered";
    pub const RAW_REGISTER_FAILED: &str = "raw.register_failed";
    pub const RAW_DOWNLOAD_PRESIGNED: &str = "raw.download_presigned";
    /// Lifecycle: an upload never completed within `CAIRN_PENDING_TTL_SECS`.
    pub const RAW_ABANDONED: &str = "raw.upload_abandoned";
    /// Lifecycle: soft-deleted by retention.
    pub const RAW_DELETED: &str = "raw.deleted";
    /// Lifecycle: the deleted asset's catalog row was removed.
    pub const RAW_PURGED: &str = "raw.purged";
    /// Lifecycle: an object was removed from the store (no item referenced it any more).
    pub const OBJECT_REMOVED: &str = "object.removed";

    /// Artifact event types.
    pub mod artifact {
        pub const CREATED: &str = "artifact.created";
        pub const DEDUPLICATED: &str = "artifact.deduplicated";
        pub const UPLOADED: &str = "artifact.uploaded";
        pub const AVAILABLE: &str = "artifact.available";
        pub const FAILED: &str = "artifact.failed";
        pub const DELETED: &str = "artifact.deleted";
        pub const LEGAL_HOLD: &str = "artifact.legal_hold";
        /// The lifecycle sweep removed the deleted artifact's catalog row.
        pub const PURGED: &str = "artifact.purged";
    }
}

/// One event about `subject` in `scope`'s tenant and env.
pub struct Event<'a> {
    pub kind: &'static str,
    pub scope: &'a Scope,
    pub subject: Uuid,
    pub lineage: Value,
    pub pii_flags: Value,
    pub train_ok: Option<bool>,
    pub detail: Value,
    pub at: DateTime<Utc>,
}

impl<'a> Event<'a> {
    pub fn new(kind: &'static str, scope: &'a Scope, subject: Uuid, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            scope,
            subject,
            lineage: json!({}),
            pii_flags: json!([]),
            train_ok: None,
            detail: json!({}),
            at,
        }
    }

    /// The event's catalog row.
    pub fn row(self) -> dataset_event::ActiveModel {
        dataset_event::ActiveModel {
            id: Set(Uuid::now_v7()),
            event_type: Set(self.kind.to_owned()),
            tenant_id: Set(self.scope.tenant.to_string()),
            env: Set(self.scope.env.to_string()),
            user_id: Set(self.scope.user.clone()),
            trace_id: Set(self.scope.trace_id.clone()),
            subject_id: Set(self.subject),
            lineage: Set(self.lineage),
            pii_flags: Set(self.pii_flags),
            train_ok: Set(self.train_ok),
            detail: Set(self.detail),
            at: Set(self.at),
        }
    }

    pub async fn record(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        // Nobody reads the row back: no RETURNING, no re-select.
        dataset_event::Entity::insert(self.row())
            .exec_without_returning(db)
            .await
            .map(|_| ())
    }
}
