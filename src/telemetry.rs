//! What every layer reports about the work it does, without knowing HTTP: the trace id of the
//! request being served (set by `http::trace`, read by error bodies, scopes and events) and the
//! `cairn_operations_total` counter the domain services record their outcomes in. The
//! Prometheus recorder and the per-request metrics stay in `http::metrics`.
use std::future::Future;

tokio::task_local! {
    static TRACE_ID: String;
}

/// The current request's trace id (empty outside a request, e.g. in jobs).
pub fn current_trace_id() -> String {
    TRACE_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `work` with `trace_id` as its [`current_trace_id`].
pub async fn with_trace_id<F: Future>(trace_id: String, work: F) -> F::Output {
    TRACE_ID.scope(trace_id, work).await
}

/// `operation`: `presign_upload`, `presign_download`, `register`, `artifact_create`,
/// `artifact_complete`; `outcome`: `ok`, `deduplicated`, `quota_exceeded` or `failed`.
pub fn record_outcome(operation: &'static str, outcome: &'static str) {
    metrics::counter!("cairn_operations_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_trace_id_is_the_scopes_and_empty_outside_one() {
        assert_eq!(current_trace_id(), "");
        let inside = with_trace_id("t-1".into(), async { current_trace_id() }).await;
        assert_eq!(inside, "t-1");
    }
}
