//! Integration tests: Loading and validating configuration: the validate command, the JSON Schema, fuzz regressions, shell integration.
//!
//! One test binary per area (see tests/README.md); each module below was its own binary before.

mod architecture;
mod cli_output;
mod cli_shell;
mod fuzz_props;
mod fuzz_regressions;
mod schema_fresh;
mod validate_cli;
mod validate_corpus;
mod validate_load;
mod validate_props;
