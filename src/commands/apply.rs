//! `dm-apply apply`.

use crate::cli::ApplyArgs;
use crate::ui::Ui;

pub async fn run(_args: &ApplyArgs, _ui: &Ui) -> miette::Result<u8> {
    Err(miette::miette!("`apply` is not built yet"))
}
