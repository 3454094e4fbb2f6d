//! `dm-apply sim`.

use crate::cli::SimArgs;
use crate::ui::Ui;

pub async fn run(_args: &SimArgs, _ui: &Ui) -> miette::Result<u8> {
    Err(miette::miette!("`sim` is not built yet"))
}
