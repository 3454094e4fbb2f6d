//! `dm-apply man`: man pages generated from the clap definitions (clap_mangen), so they cannot drift from the CLI.
//! `docs/dm-apply.1` is a checked-in copy; `tests/cli_shell.rs` fails when it is stale.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::commands::EXIT_OK;
use crate::ui::{Data, Ui};

/// The roff text of `dm-apply.1`.
pub fn page() -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Write `dm-apply.1` and one `dm-apply-<sub>.1` per subcommand into `dir`; returns the file names written.
pub fn write_all(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut cmd = Cli::command();
    // Building propagates the version and the `dm-apply <sub>` usage names to the subcommands.
    cmd.build();
    crate::atomic::write(&dir.join("dm-apply.1"), &page()?, crate::atomic::Mode::Default)?;
    written.push("dm-apply.1".to_owned());
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("dm-apply-{}", sub.get_name());
        let sub = sub.clone().display_name(name.clone());
        let mut out = Vec::new();
        clap_mangen::Man::new(sub).render(&mut out)?;
        let file = format!("{name}.1");
        crate::atomic::write(&dir.join(&file), &out, crate::atomic::Mode::Default)?;
        written.push(file);
    }
    Ok(written)
}

pub fn run(args: &ManArgs, ui: &Ui) -> miette::Result<u8> {
    match &args.out_dir {
        None => {
            let text = page().map_err(|e| miette::miette!("cannot render the man page: {e}"))?;
            ui.data(Data::Plain, &String::from_utf8_lossy(&text))?;
        }
        Some(dir) => {
            let files =
                write_all(dir).map_err(|e| miette::miette!("cannot write man pages to `{}`: {e}", dir.display()))?;
            ui.info(format_args!("Wrote {} man pages to {}", files.len(), dir.display()));
        }
    }
    Ok(EXIT_OK)
}
