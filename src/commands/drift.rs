//! `dm-apply drift`: read-only drift report (text or JSON), exit 0 no drift / 2 drift / 1 error, optional
//! Prometheus textfile.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::{DriftArgs, ReportFormat};
use crate::commands::common::{client_options, failure_report, print_notices};
use crate::commands::{EXIT_CHANGES, EXIT_OK};
use crate::drift;
use crate::pipeline::{self, ConfigSource};
use crate::ui::{Data, Ui};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn check(args: &DriftArgs, ui: &Ui) -> miette::Result<drift::DriftReport> {
    let key = crate::state::key::load(args.state.state_key_file.as_deref())?;
    let source = ConfigSource { paths: &args.files.files, cluster: None };
    let run = pipeline::drift(source, &client_options(&args.conn), key.as_ref()).await;
    print_notices(&run.notices, ui);
    run.result.map_err(|f| failure_report(f, ui))
}

pub async fn run(args: &DriftArgs, ui: &Ui) -> miette::Result<u8> {
    if let Some(file) = &args.files.clusters {
        return super::clusters::drift_command(file, args, ui).await;
    }
    let ts = now();
    let result = check(args, ui).await;
    if let Some(path) = &args.prometheus_textfile {
        let text = drift::prometheus_text(result.as_ref().ok(), ts);
        if let Err(e) = drift::write_atomic(path, &text) {
            let msg = miette::miette!("cannot write the Prometheus textfile {}: {e}", path.display());
            return Err(match result {
                Ok(_) => msg,
                Err(r) => {
                    ui.warn(format!("{msg}"));
                    r
                }
            });
        }
    }
    let report = result?;
    match args.output {
        ReportFormat::Text => ui.data(Data::Plain, &drift::render_text(&report))?,
        ReportFormat::Json => ui.data(Data::Json, &drift::render_json(&report, ts))?,
    }
    Ok(if report.has_drift() { EXIT_CHANGES } else { EXIT_OK })
}
