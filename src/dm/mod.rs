//! DM-master's OpenAPI: wire types, the typed client, error mapping and version detection.

pub mod client;
pub mod error;
pub mod facts;
pub mod legacy;
pub mod retry;
pub mod types;
pub mod version;

pub use client::{ClientOptions, DmClient, RetryPolicy};
pub use error::DmError;
pub use version::ServerVersion;
