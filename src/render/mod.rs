//! Renderers: pure functions of a [`Plan`](crate::plan::Plan) (they never fetch, never print).
//!
//! - [`text`]: for people, Terraform's conventions, ends with `Plan: X to add, Y to change, Z to destroy.`;
//! - [`markdown`]: for pull-request comments, always under GitHub's 65,536-character limit;
//! - [`json`]: versioned machine-readable form.

pub mod json;
pub mod markdown;
pub mod preview;
pub mod text;
