//! `dm-apply plan`.

use crate::cli::PlanArgs;
use crate::ui::Ui;

pub async fn run(_args: &PlanArgs, _ui: &Ui) -> miette::Result<u8> {
    Err(miette::miette!("`plan` is not built yet"))
}
