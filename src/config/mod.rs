//! Desired state: the model, loading with source spans, `${env:..}` interpolation and validation.

pub mod model;

pub use model::*;
