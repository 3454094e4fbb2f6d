//! Renderers: pure functions of a [`Plan`](crate::plan::Plan) (they never fetch, never print).
//!
//! - [`text`]: for people, Terraform's conventions, ends with `Plan: X to add, Y to change, Z to destroy.`;
//! - [`markdown`]: for pull-request comments, each under GitHub's 65,536-character limit (one, or several);
//! - [`json`]: versioned machine-readable form;
//! - [`present`]: the plan in the configuration's terms (run by the planner: what text and markdown show);
//! - [`paths`]: configuration paths as plans show them (relative to the repository; reads the current directory).

pub mod json;
pub mod markdown;
pub mod paths;
pub mod present;
pub mod preview;
pub mod text;
