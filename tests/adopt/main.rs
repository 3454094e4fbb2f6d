//! Integration tests: Adoption: convert of dmctl files, and the CI recipes.
//!
//! One test binary per area (see tests/README.md); each module below was its own binary before.

mod ci_recipes;
mod convert_dmctl;
mod convert_props;
mod convert_ref;
mod field_coverage;
