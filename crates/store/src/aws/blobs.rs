//! Blobs in S3: one object per key (S3 writes are atomic per object), keys checked by
//! the rules every adapter shares ([`crate::blob_key`]).

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use opti_core::ports::{BlobStore, StoreError};

use super::{backend, AwsStore};
use crate::blob_key::{validate_key, validate_prefix};

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound {
        entity: "blob",
        id: key.to_owned(),
    }
}

#[async_trait]
impl BlobStore for AwsStore {
    async fn put_blob(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<(), StoreError> {
        validate_key(key)?;
        self.s3()
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(|e| backend("PutObject", e))?;
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        validate_key(key)?;
        let out = match self
            .s3()
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Err(not_found(key))
            }
            Err(e) => return Err(backend("GetObject", e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Backend(format!("reading s3 object {key}: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn blob_size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        validate_key(key)?;
        match self
            .s3()
            .head_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.content_length
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
            )),
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                Ok(None)
            }
            Err(e) => Err(backend("HeadObject", e)),
        }
    }

    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        // S3 deletes are idempotent: a missing key succeeds.
        self.s3()
            .delete_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
            .map_err(|e| backend("DeleteObject", e))?;
        Ok(())
    }

    async fn list_blobs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .s3()
                .list_objects_v2()
                .bucket(self.bucket())
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| backend("ListObjectsV2", e))?;
            keys.extend(
                out.contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| o.key)
                    // Objects written around the adapter with keys it would refuse.
                    .filter(|k| validate_key(k).is_ok()),
            );
            match out.next_continuation_token {
                Some(next) if out.is_truncated == Some(true) => token = Some(next),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}
