//! dm-apply: declarative, GitOps-style management of TiDB Data Migration (DM) sources and tasks.
//!
//! The data flows one way:
//!
//! ```text
//! files ─▶ config (load, interpolate, validate) ─▶ Desired
//! DM-master ─▶ dm (typed client) ─▶ live (fetch) ─▶ Live
//! Desired + Live ─▶ normalize ─▶ plan (diff, actions, reasons, impact) ─▶ Plan
//! Plan ─▶ render (text | markdown | json)
//! Plan ─▶ apply (step graph ─▶ executor ─▶ events) ─▶ report
//! Desired + Live ─▶ drift (read-only) ─▶ report + metrics
//! ```
//!
//! `cli`, `commands` and `ui` are the CLI (arguments, printing, exit codes); every other module is the engine and
//! never names them (`ui`'s pure string helpers `sanitize`, `redact` and `style` excepted). `pipeline` is the run
//! `plan` and `drift` share with `--clusters`. See docs/architecture.md; tests/config/architecture.rs enforces it.

pub mod apply;
pub mod atomic;
pub mod cli;
pub mod clusters;
pub mod commands;
pub mod config;
pub mod convert;
pub mod dm;
pub mod drift;
pub mod duration;
pub mod import;
pub mod legacy;
pub mod live;
pub mod normalize;
pub mod pipeline;
pub mod plan;
pub mod preview;
pub mod render;
pub mod saved_plan;
pub mod secret;
pub mod sim;
pub mod state;
pub mod ui;
