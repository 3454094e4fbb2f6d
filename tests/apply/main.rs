//! Integration tests: apply against the simulator: step order, failures, faults, concurrency, scale, properties.
//!
//! One test binary per area (see tests/README.md); each module below was its own binary before.

mod apply_cli;
mod apply_common;
mod apply_failures;
mod apply_props;
mod apply_saved;
mod apply_scale;
mod apply_signals;
mod apply_steps;
mod concurrent_writers;
mod dmctl_tasks;
mod faults_cli;
mod faults_converge;
mod rel_common;
mod relay;
mod retry_budget;
mod safe_changes;
mod state_record;
mod verify_settle;
