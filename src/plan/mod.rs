//! The planner: a pure function of the desired state and the live state (no I/O, no printing).
//!
//! - [`model`]: the plan types (serializable; secrets only in memory).
//! - [`planner`]: `make_plan(desired, live, opts)`.
//!
//! dm-apply's record of write-only values is [`crate::state`] (it does I/O; the planner only reads what was
//! fetched).

pub mod model;
pub mod planner;
mod relay;
pub mod safe;
#[cfg(any(test, debug_assertions, feature = "testkit"))]
pub mod testing;

pub use model::*;
pub use planner::{PlanError, PlanOptions, PlanProblem, build_plan, check_guards, finish_plan, make_plan};
