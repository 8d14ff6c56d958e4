//! Storage adapters behind the core ports, and the conformance suite every adapter passes.
//!
//! - [`local`]: the embedded adapter, one SQLite file (WAL) and a blob directory, for
//!   `opti serve`, demos and CI. Open it with [`LocalStore::open`].
//! - [`conformance`]: backend-agnostic checks of the port semantics (idempotent create,
//!   optimistic updates, stable keyset pagination, audit filters, registry pointer CAS,
//!   blobs). Every adapter's tests run the same list, see [`conformance::run_all`].
//! - `aws` (feature `aws`): DynamoDB (records, one table) and S3 (blobs), for the
//!   serverless deployment; the same conformance suite runs against moto.
//! - [`blob_key`]: the blob key rules every adapter enforces, so that a key that is
//!   refused locally is refused in AWS too.

#[cfg(feature = "aws")]
pub mod aws;
pub mod blob_key;
pub mod conformance;
pub mod local;

pub use local::LocalStore;

#[cfg(feature = "aws")]
pub use aws::AwsStore;

use opti_core::ports::MAX_PAGE;

/// Page size used when a query asks for `limit = 0`.
pub const DEFAULT_PAGE: u32 = 50;

/// The page size an adapter serves for a requested `limit`: [`DEFAULT_PAGE`] for 0,
/// otherwise `limit` capped at [`MAX_PAGE`].
pub fn page_size(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_zero_and_caps_large_requests() {
        assert_eq!(page_size(0), DEFAULT_PAGE);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(u32::MAX), MAX_PAGE);
    }
}
