//! Integration tests: plan, drift, import and multi-cluster runs against the simulator; rendering; properties of the planner.
//!
//! One test binary per area (see tests/README.md); each module below was its own binary before.

mod cli_clusters;
mod drift_sim;
mod import_sim;
mod plan_common;
mod plan_fidelity;
mod plan_live_fallback;
mod plan_planner;
mod plan_props;
mod plan_review;
mod plan_saved;
mod plan_scale;
mod plan_sim;
mod preview;
mod render_plan;
