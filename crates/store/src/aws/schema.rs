//! The table and bucket as the adapter expects them, for tests and local emulators (in
//! AWS the SAM template in `infra/template.yaml` creates the same table).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use opti_core::ports::StoreError;

use super::keys::{self, INDEXES};
use super::{backend, AwsStore};

/// The key schema of the table, as data (the SAM template test compares against it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Partition key attribute of the table.
    pub partition_key: &'static str,
    /// `(index name, partition key attribute, sort key attribute)`.
    pub indexes: Vec<(&'static str, &'static str, &'static str)>,
}

impl TableSpec {
    /// The layout of [`super::keys`].
    pub fn current() -> Self {
        TableSpec {
            partition_key: keys::PK,
            indexes: INDEXES.iter().map(|i| (i.name, i.pk, i.sk)).collect(),
        }
    }
}

fn string_attr(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

impl AwsStore {
    /// Creates the table (on-demand billing, every index projecting all attributes) if it
    /// does not exist, and waits until it is active.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let exists = self
            .ddb()
            .describe_table()
            .table_name(self.table())
            .send()
            .await
            .is_ok();
        if !exists {
            let mut req = self
                .ddb()
                .create_table()
                .table_name(self.table())
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(keys::PK, KeyType::Hash)?)
                .attribute_definitions(string_attr(keys::PK)?);
            for index in INDEXES {
                req = req
                    .attribute_definitions(string_attr(index.pk)?)
                    .attribute_definitions(string_attr(index.sk)?)
                    .global_secondary_indexes(
                        GlobalSecondaryIndex::builder()
                            .index_name(index.name)
                            .key_schema(key(index.pk, KeyType::Hash)?)
                            .key_schema(key(index.sk, KeyType::Range)?)
                            .projection(
                                Projection::builder()
                                    .projection_type(ProjectionType::All)
                                    .build(),
                            )
                            .build()
                            .map_err(|e| StoreError::Backend(e.to_string()))?,
                    );
            }
            req.send().await.map_err(|e| backend("CreateTable", e))?;
        }
        for _ in 0..120 {
            let out = self
                .ddb()
                .describe_table()
                .table_name(self.table())
                .send()
                .await
                .map_err(|e| backend("DescribeTable", e))?;
            let active = out
                .table
                .and_then(|t| t.table_status)
                .is_some_and(|s| s == aws_sdk_dynamodb::types::TableStatus::Active);
            if active {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(StoreError::Backend(format!(
            "table {} did not become active",
            self.table()
        )))
    }

    /// Creates the bucket if it does not exist.
    pub async fn create_bucket_if_missing(&self) -> Result<(), StoreError> {
        if self
            .s3()
            .head_bucket()
            .bucket(self.bucket())
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.s3()
            .create_bucket()
            .bucket(self.bucket())
            .send()
            .await
            .map_err(|e| backend("CreateBucket", e))?;
        Ok(())
    }
}
