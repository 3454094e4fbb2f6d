//! `dm-apply validate`.

use crate::cli::ValidateArgs;
use crate::ui::Ui;

pub fn run(_args: &ValidateArgs, _ui: &Ui) -> miette::Result<u8> {
    Err(miette::miette!("`validate` is not built yet"))
}
