//! The planner: a pure function of the desired state and the live state (no I/O, no printing).

pub mod model;
pub mod state;

pub use model::*;
