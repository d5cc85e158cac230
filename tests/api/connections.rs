//! What a client can hold of the server (issue 14 §2): half-sent heads and idle keep-alives are
//! closed within their timeouts, a stalled upload ends with 408 and leaves nothing, the number
//! of connections is capped, and `/healthz` answers while thousands of idle connections are open.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{sample, TestApp};

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes): what it sent, and when it
/// closed, measured from `from`.
async fn until_closed(conn: &mut TcpStream, from: Instant, limit: Duration) -> (Vec<u8>, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((from + limit).into(), conn.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, from.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET /healthz` on a new connection; its status line, or None if no answer came in `limit`.
async fn healthz(app: &TestApp, limit: Duration) -> Option<String> {
    let res = tokio::time::timeout(limit, async {
        let mut c = TcpStream::connect(addr(app)).await.ok()?;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.ok()?;
        Some(String::from_utf8_lossy(&out).lines().next()?.to_owned())
    })
    .await;
    res.ok().flatten()
}

#[tokio::test]
async fn half_sent_heads_are_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_HEADER_TIMEOUT_SECS", "1");
        s.set("CAIRN_KEEPALIVE_TIMEOUT_SECS", "30");
    })
    .await;
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(addr(&app)).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        conns.push(c);
    }
    let sent = Instant::now();
    for c in &mut conns {
        let (got, after) = until_closed(c, sent, Duration::from_secs(5)).await;
        assert!(got.is_empty(), "no answer to half a head: {got:?}");
        assert!(
            after >= Duration::from_millis(900),
            "closed too early: {after:?}"
        );
    }
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "{:?}",
        sent.elapsed()
    );
    // A head that completes in time is answered as usual.
    assert_eq!(
        healthz(&app, Duration::from_secs(2)).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_keepalive_timeout() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_HEADER_TIMEOUT_SECS", "1");
        s.set("CAIRN_KEEPALIVE_TIMEOUT_SECS", "3");
    })
    .await;
    // One that never sends a byte, and one that goes idle after a request.
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    let opened = Instant::now();
    let mut used = TcpStream::connect(addr(&app)).await.unwrap();
    used.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = used.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    let answered = Instant::now();

    let (got, after) = until_closed(&mut used, answered, Duration::from_secs(8)).await;
    assert!(got.is_empty());
    // Idle is not a half-sent head: the 1 s header timeout does not apply.
    assert!(
        after >= Duration::from_millis(2800),
        "closed after {after:?}"
    );
    assert!(
        after <= Duration::from_millis(6000),
        "closed after {after:?}"
    );
    let (_, after) = until_closed(&mut silent, opened, Duration::from_secs(8)).await;
    assert!(
        after >= Duration::from_millis(2800) && after <= Duration::from_millis(6000),
        "{after:?}"
    );
}

/// A request head and the first `sent` bytes of a body of `length` bytes, then nothing.
async fn stall(app: &TestApp, head: &str, sent: &[u8]) -> (String, Duration) {
    let mut c = TcpStream::connect(addr(app)).await.unwrap();
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(sent).await.unwrap();
    let began = Instant::now();
    let (got, after) = until_closed(&mut c, began, Duration::from_secs(10)).await;
    (String::from_utf8_lossy(&got).into_owned(), after)
}

/// The head of `PUT /artifacts/{id}/content` for tenant acme in dev, announcing `length` bytes.
fn put_content_head(id: &str, token: &str, length: usize) -> String {
    format!(
        "PUT /artifacts/{id}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         X-Tenant-Id: acme\r\nX-Env: dev\r\nContent-Length: {length}\r\n\r\n"
    )
}

fn status_and_code(answer: &str) -> (String, String) {
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let code = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

#[tokio::test]
async fn a_stalled_upload_ends_with_408_and_leaves_nothing() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_BODY_TIMEOUT_SECS", "1");
        s.set("CAIRN_BODY_MIN_RATE", "1024");
    })
    .await;
    let acme = app.owner("acme", "dev");
    let bytes = sample("image/png", 100_000);
    let created: Value = app
        .create_artifact(&acme, "image/png", &bytes, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = acme.token.clone().unwrap();

    // Streamed through Cairn (every store): 4 KiB, then nothing.
    let head = put_content_head(&id, &token, bytes.len());
    let (answer, after) = stall(&app, &head, &bytes[..4096]).await;
    assert_eq!(
        status_and_code(&answer),
        (
            "HTTP/1.1 408 Request Timeout".to_owned(),
            "body_timeout".to_owned()
        ),
        "{answer}"
    );
    assert!(after < Duration::from_secs(5), "{after:?}");
    // Nothing was kept: the artifact is still pending and takes the whole upload afterwards.
    let a: Value = app
        .get(&acme, &format!("/artifacts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["status"], "pending");
    assert_eq!(app.object_count().await, 0);
    let res = app.put_content(&acme, &id, &bytes).await;
    assert_eq!(res.status(), StatusCode::OK);

    // A trickle (a few bytes every 300 ms) is as slow as a stall.
    let created: Value = app
        .create_artifact(&acme, "image/png", &sample("image/png", 50_000), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["artifact"]["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut c = TcpStream::connect(addr(&app)).await.unwrap();
    c.write_all(put_content_head(&id, &token, 50_000).as_bytes())
        .await
        .unwrap();
    let began = Instant::now();
    let drip = async {
        for chunk in sample("image/png", 50_000).chunks(16) {
            if c.write_all(chunk).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drip).await;
    let (answer, _) = until_closed(&mut c, began, Duration::from_secs(10)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_and_code(&answer).1, "body_timeout", "{answer}");

    // The local store's own upload endpoint: the temp file goes too.
    if !app.is_s3() {
        let p = app
            .presign(&acme, "slow.bin", "application/octet-stream", &bytes)
            .await;
        let url = p["upload"]["url"].as_str().unwrap();
        let path = url.split_once(&app.base).unwrap().1;
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\n\r\n",
            bytes.len()
        );
        let (answer, _) = stall(&app, &head, &bytes[..1000]).await;
        assert_eq!(status_and_code(&answer).1, "body_timeout", "{answer}");
        let tmp = app.data_dir.join("objects").join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != ".ready")
            .collect();
        assert!(left.is_empty(), "temp files left: {left:?}");
    }
}

#[tokio::test]
async fn healthz_answers_while_thousands_of_idle_connections_are_held() {
    let app = TestApp::spawn().await;
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    // Half of them have sent part of a head and are waiting for the header timeout.
    for c in idle.iter_mut().step_by(2) {
        c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    }
    for _ in 0..20 {
        let began = Instant::now();
        let status = healthz(&app, Duration::from_secs(2)).await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
        assert!(
            began.elapsed() < Duration::from_millis(1000),
            "{:?}",
            began.elapsed()
        );
    }
    drop(idle);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_one_to_end() {
    let app = TestApp::spawn_with(|s| {
        s.set("CAIRN_MAX_CONNECTIONS", "8");
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut c = TcpStream::connect(addr(&app)).await.unwrap();
        // A request answered proves the connection is being served, not waiting in the backlog.
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(c);
    }
    // The ninth is accepted by the kernel but not served.
    let waiting = tokio::spawn({
        let a = addr(&app);
        async move {
            let mut c = TcpStream::connect(a).await.unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = Vec::new();
            c.read_to_end(&mut out).await.unwrap();
            (Instant::now(), out)
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "served beyond the cap");
    let freed = Instant::now();
    drop(idle.pop());
    let (answered, out) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection ended")
        .unwrap();
    assert!(out.starts_with(b"HTTP/1.1 200"));
    assert!(answered >= freed);
}
