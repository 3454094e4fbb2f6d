//! Integration tests: Secrets never printed, and dm-apply against a hostile DM-master.
//!
//! One test binary per area (see tests/README.md); each module below was its own binary before.

mod dmctl_secrets;
mod hostile;
mod hostile_server;
mod secrets_everywhere;
