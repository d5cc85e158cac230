//! Upload URLs and browser forms for the S3 backend: a presigned `PUT` with every granted fact
//! as a signed header, or a `POST` policy whose conditions pin the same facts.
use std::collections::BTreeMap;

use base64::Engine;
use chrono::Utc;
use serde_json::json;

use super::{seconds_until, S3Store};
use crate::storage::{StoreError, Upload, UploadMethod, UploadSpec};

impl S3Store {
    pub(super) async fn upload_form(
        &self,
        spec: &UploadSpec<'_>,
        method: UploadMethod,
    ) -> Result<Upload, StoreError> {
        let now = Utc::now();
        let size = spec.size.get().to_string();
        let checksum = spec
            .sha256
            .map(|s| base64::engine::general_purpose::STANDARD.encode(s.bytes()));
        match method {
            UploadMethod::Put => {
                let mut headers: Vec<(&str, &str)> = vec![
                    ("cache-control", spec.cache_control),
                    ("content-length", &size),
                    ("content-type", spec.content_type.as_str()),
                ];
                if let Some(c) = &checksum {
                    headers.push(("x-amz-checksum-sha256", c));
                }
                if self.conditional_writes {
                    headers.push(("if-none-match", "*"));
                }
                let url = self
                    .presign_url(
                        "PUT",
                        spec.key,
                        &[("x-id", "PutObject")],
                        &headers,
                        seconds_until(spec.expires_at, now),
                        now,
                    )
                    .await?;
                Ok(Upload::Put {
                    url,
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                })
            }
            UploadMethod::Post => {
                let creds = self.credentials().await?;
                let conditions = vec![
                    json!({ "bucket": self.bucket }),
                    json!(["eq", "$key", spec.key.as_str()]),
                    json!(["eq", "$Content-Type", spec.content_type.as_str()]),
                    json!(["eq", "$Cache-Control", spec.cache_control]),
                    json!(["content-length-range", spec.size.get(), spec.size.get()]),
                ];
                let mut fields: BTreeMap<String, String> = self
                    .signer
                    .post_policy(&creds, conditions, spec.expires_at, now)
                    .into_iter()
                    .collect();
                fields.insert("key".into(), spec.key.to_string());
                fields.insert("Content-Type".into(), spec.content_type.to_string());
                fields.insert("Cache-Control".into(), spec.cache_control.to_owned());
                let (host, path) = self.location(None);
                Ok(Upload::Post {
                    url: format!("{}://{host}{path}", self.endpoint.scheme),
                    fields,
                })
            }
        }
    }
}
