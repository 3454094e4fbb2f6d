//! `dm-apply sim`: serve the DM-master simulator until Ctrl-C or SIGTERM.

use std::time::Duration;

use crate::cli::SimArgs;
use crate::commands::EXIT_OK;
use crate::sim::{FaultKind, Generation, SimOptions, SimServer, SimTls};
use crate::ui::Ui;

/// Turn the command-line knobs into [`SimOptions`], with errors that say what to write instead.
pub fn options(args: &SimArgs) -> miette::Result<SimOptions> {
    let generation = Generation::parse(&args.generation).ok_or_else(|| {
        let known: Vec<&str> = Generation::ALL.iter().map(|g| g.name()).collect();
        miette::miette!(
            help = format!("use one of {} (`v8.5` means v8.5.3)", known.join(", ")),
            "--generation `{}` is not a known DM-master generation",
            args.generation
        )
    })?;
    let openapi = match args.openapi.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => true,
        "off" | "false" | "0" => false,
        other => {
            return Err(miette::miette!(
                help = "use --openapi on or --openapi off",
                "--openapi `{other}` is neither on nor off"
            ));
        }
    };
    if !(0.0..=1.0).contains(&args.fault_rate) || args.fault_rate.is_nan() {
        return Err(miette::miette!(
            help = "e.g. --fault-rate 0.1 fails one request in ten",
            "--fault-rate {} must be between 0.0 and 1.0",
            args.fault_rate
        ));
    }
    let mut kinds = vec![];
    for k in args.fault_kinds.iter().filter(|k| !k.trim().is_empty()) {
        kinds.push(FaultKind::parse(k).ok_or_else(|| {
            miette::miette!(
                help = "use a comma-separated list of 5xx, reset, delay",
                "--fault-kinds: unknown kind `{k}`"
            )
        })?);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(SimTls {
            cert_pem: read_pem(cert, "--tls-cert")?,
            key_pem: read_pem(key, "--tls-key")?,
            client_ca_pem: match &args.tls_client_ca {
                Some(ca) => Some(read_pem(ca, "--tls-client-ca")?),
                None => None,
            },
        }),
        _ => None,
    };
    if let Some(t) = &tls {
        t.check().map_err(|e| miette::miette!(help = "check --tls-cert, --tls-key and --tls-client-ca", "{e}"))?;
    }
    Ok(SimOptions {
        tls,
        workers: args.workers,
        latency: Duration::from_millis(args.latency_ms),
        fault_rate: args.fault_rate,
        fault_kinds: kinds,
        generation,
        seed: args.seed,
        stage_delay: Duration::from_millis(args.stage_delay_ms),
        openapi,
        ..SimOptions::default()
    })
}

fn read_pem(path: &std::path::Path, flag: &str) -> miette::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| miette::miette!("{flag} {}: cannot read: {e}", path.display()))
}

pub async fn run(args: &SimArgs, _ui: &Ui) -> miette::Result<u8> {
    let opts = options(args)?;
    super::common::no_huge_pages_from_here();
    let server = SimServer::start_on(opts.clone(), &args.listen).await.map_err(|e| {
        miette::miette!(
            help = "pick another --listen address, e.g. 127.0.0.1:0",
            "cannot listen on {}: {e}",
            args.listen
        )
    })?;
    let shutdown = shutdown_signal();
    crate::ui::eprint(&format!("dm-apply sim listening on {}\n", server.url()));
    tracing::info!(
        workers = opts.workers,
        generation = opts.generation.name(),
        openapi = opts.openapi,
        latency_ms = args.latency_ms,
        fault_rate = opts.fault_rate,
        "simulator started"
    );
    shutdown.await;
    crate::ui::eprint("dm-apply sim: shutting down\n");
    server.shutdown().await;
    Ok(EXIT_OK)
}

/// Registers the shutdown signals now, not when first awaited: the address line tells a script it may send SIGTERM,
/// and a signal arriving before the listener exists would kill the process instead of stopping it.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async fn recv(s: Option<Signal>) {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            _ = recv(term) => {},
            _ = recv(int) => {},
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
