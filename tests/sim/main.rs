//! Integration tests: The simulator and the DM client: every rule the simulator implements, every client endpoint, TLS.
//!
//! One test binary per area (see tests/README.md); each module below was its own binary before.

mod client_conformance;
mod client_endpoints;
mod sim_cli;
mod sim_help;
mod sim_robustness;
mod sim_rules;
mod sim_stateful;
mod simh;
mod tls_sim;
