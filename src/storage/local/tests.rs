//! Tests of the local store: writes, reads, listings, signed URLs and forms.
use bytes::Bytes;
use futures_util::Stream;

use super::*;
use crate::storage::{Upload, UploadMethod, UploadSpec};
use crate::values::{ContentType, SizeBytes};

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(dir.path(), "http://h", b"secret").unwrap();
    (dir, s)
}

fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    futures_util::stream::iter(
        parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p)))
            .collect::<Vec<_>>(),
    )
}

fn key() -> ObjectKey {
    ObjectKey::parse("tenants/t/dev/raw/1/a.txt").unwrap()
}

#[tokio::test]
async fn stale_temp_files_go_and_fresh_ones_stay() {
    let (_dir, s) = store();
    let tmp = s.root.join("tmp");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (name, len, old) in [
        ("0190f000-killed", 1000, true),
        ("0190f000-killed.json", 10, true),
        ("0190f001-live", 5, false),
        (".ready", 2, true),
    ] {
        let f = std::fs::File::create(tmp.join(name)).unwrap();
        f.set_len(len).unwrap();
        if old {
            f.set_modified(hour_ago).unwrap();
        }
    }
    std::fs::create_dir(tmp.join("0190f000-dir")).unwrap();
    let stale = s
        .list_temp_files(Utc::now() - chrono::Duration::minutes(10))
        .await
        .unwrap();
    let names: Vec<_> = stale.iter().map(|f| (f.name.as_str(), f.size)).collect();
    assert_eq!(
        names,
        [("0190f000-killed", 1000), ("0190f000-killed.json", 10)]
    );

    let removed = s
        .remove_stale_temp_files(std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(removed, (2, 1010));
    let mut left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [".ready", "0190f000-dir", "0190f001-live"]);
    // Only names in tmp/ itself.
    for name in ["", ".ready", "../objects", "a/b"] {
        assert!(s.remove_temp_file(name).await.is_err(), "{name}");
    }
    assert!(s.remove_temp_file("gone-already").await.is_ok());
}

#[tokio::test]
async fn writes_once_and_never_overwrites() {
    let (_d, s) = store();
    let m = s
        .write(&key(), "text/plain", 5, None, body(&[b"he", b"llo"]))
        .await
        .unwrap();
    assert_eq!(m.sha256, hex::encode(sha2::Sha256::digest(b"hello")));
    let again = s
        .write(&key(), "text/plain", 5, None, body(&[b"HELLO"]))
        .await;
    assert!(matches!(again, Err(WriteError::Exists)));
    // Read whole, and streamed from the file.
    let Some((super::Contents::Whole(got), _)) = s.read(&key(), 5).await.unwrap() else {
        panic!("a 5-byte object is read whole");
    };
    assert_eq!(&got[..], b"hello");
    let Some((super::Contents::File(mut f), meta)) = s.read(&key(), 4).await.unwrap() else {
        panic!("an object over the limit is opened");
    };
    assert_eq!(meta.size, 5);
    let mut got = String::new();
    f.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "hello");
    assert_eq!(
        std::fs::read_dir(s.root.join("tmp")).unwrap().count(),
        0,
        "temp files left"
    );
}

#[tokio::test]
async fn refuses_wrong_sizes_and_content_and_stores_nothing() {
    let (_d, s) = store();
    let long = s
        .write(&key(), "text/plain", 3, None, body(&[b"he", b"llo"]))
        .await;
    assert!(matches!(long, Err(WriteError::TooLarge { declared: 3 })));
    let short = s
        .write(&key(), "text/plain", 9, None, body(&[b"hello"]))
        .await;
    assert!(matches!(
        short,
        Err(WriteError::SizeMismatch { received: 5, .. })
    ));
    let wrong = Sha256::from_bytes([0; 32]);
    let bad = s
        .write(&key(), "text/plain", 5, Some(wrong), body(&[b"hello"]))
        .await;
    assert!(matches!(bad, Err(WriteError::ChecksumMismatch)));
    assert!(s.head(&key()).await.unwrap().is_none());
    assert_eq!(std::fs::read_dir(s.root.join("tmp")).unwrap().count(), 0);
}

#[tokio::test]
async fn signed_urls_bind_their_facts() {
    let (_d, s) = store();
    let now = Utc::now();
    let exp = now + chrono::Duration::seconds(60);
    let ct = ContentType::parse("text/plain").unwrap();
    let spec = UploadSpec {
        key: &key(),
        content_type: &ct,
        size: SizeBytes::new_unchecked(5),
        sha256: None,
        cache_control: crate::storage::PRIVATE_IMMUTABLE,
        expires_at: exp,
    };
    let Upload::Put { url, .. } = s.presign_upload(&spec, UploadMethod::Put).await.unwrap() else {
        panic!("expected PUT");
    };
    let sig = url.rsplit("sig=").next().unwrap();
    let key = key();
    let ok = PutGrant {
        key: &key,
        exp: exp.timestamp(),
        content_type: "text/plain",
        size: 5,
        sha256: None,
        sig,
    };
    assert_eq!(s.verify_put(&ok, now), Ok(()));
    let changed = [
        PutGrant {
            content_type: "text/html",
            ..ok
        },
        PutGrant { size: 6, ..ok },
        PutGrant {
            exp: ok.exp + 1,
            ..ok
        },
        PutGrant {
            sha256: Some("00"),
            ..ok
        },
    ];
    for grant in changed {
        assert_eq!(
            s.verify_put(&grant, now),
            Err(UrlError::BadSignature),
            "{grant:?}"
        );
    }
    let later = exp + chrono::Duration::seconds(1);
    assert_eq!(s.verify_put(&ok, later), Err(UrlError::Expired));
}
