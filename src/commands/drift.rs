//! `dm-apply drift`.

use crate::cli::DriftArgs;
use crate::ui::Ui;

pub async fn run(_args: &DriftArgs, _ui: &Ui) -> miette::Result<u8> {
    Err(miette::miette!("`drift` is not built yet"))
}
