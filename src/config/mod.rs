//! Desired state: the model, loading with source spans, `${env:..}` interpolation and validation.
//!
//! Entry points: [`load`] (library; plan/apply/drift through `crate::pipeline::load_config`), [`analyze`] (validate),
//! [`analyze_source`] (one in-memory file: fuzzing, property tests), and
//! [`json_schema`].

pub mod diag;
mod interp;
mod loader;
pub mod model;
pub mod schema;
mod schema_errors;
mod semantic;
pub mod yaml;
mod yaml_fast;

pub use diag::{LoadError, Problem, render_plain};
pub use interp::{InterpOptions, MAX_SECRET_FILE};
pub(crate) use loader::finish;
pub use loader::{
    Analysis, Loaded, MAX_FILE_BYTES, MAX_REPORTED, analyze, analyze_source, analyze_with_env, analyze_with_options,
    is_foreign, load, skipped_note,
};
pub use model::*;
pub use schema::{json_schema, json_schema_text};
pub use semantic::BINLOG_EVENTS;
pub use semantic::FOREIGN_KEY_EVENTS;
