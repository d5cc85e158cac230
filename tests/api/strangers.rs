//! What the unauthenticated service routes tell a stranger (issue 14 §6): `/metrics` names no
//! tenant without `CAIRN_METRICS_TOKEN` (`/readyz` giving no reasons is shown in
//! observability.rs).
use reqwest::StatusCode;

use crate::helpers::{TestApp, METRICS_TOKEN};

async fn metrics(app: &TestApp, bearer: Option<&str>) -> String {
    let mut req = app.client.get(format!("{}/metrics", app.base));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

#[tokio::test]
async fn metrics_name_tenants_only_to_the_metrics_token() {
    let app = TestApp::spawn().await;
    let who = app.owner("secretive", "dev");
    app.store(&who, "a.bin", b"counted").await;
    let series = "cairn_tenant_objects{tenant=\"secretive\"}";

    let full = metrics(&app, Some(METRICS_TOKEN)).await;
    assert!(full.contains(series), "the token shows per-tenant series");

    let operator = app.operator_token();
    let wrong = format!("{METRICS_TOKEN}x");
    for bearer in [None, Some(wrong.as_str()), Some(operator.as_str())] {
        let text = metrics(&app, bearer).await;
        assert!(!text.contains("secretive"), "{bearer:?}: {text}");
        assert!(!text.contains("tenant=\""), "{bearer:?}: a tenant label");
        // The rest is still there.
        assert!(text.contains("cairn_http_requests_total{"), "{bearer:?}");
    }

    // Without a configured token nobody sees tenant names, whatever they send.
    let closed = TestApp::spawn_with(|s| {
        s.limits.metrics_token = None;
    })
    .await;
    let who = closed.owner("secretive", "dev");
    closed.store(&who, "b.bin", b"counted too").await;
    let text = metrics(&closed, Some(METRICS_TOKEN)).await;
    assert!(!text.contains("tenant=\""), "{text}");
}
