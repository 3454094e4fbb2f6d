//! The verification after an apply that disables (or enables) a source: DM answers `/disable` before its workers
//! pause the source's tasks, so a plan read at once still sees them running. The verification waits for those
//! stages, so it reports what the next plan shows (here: the start of a task on the disabled source, blocked).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dm_apply::sim::{Generation, SimOptions, SimServer};

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_dm-apply"))
            .args(&args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "error")
            .env("DM_SOURCE_PASSWORD", "settle-src-pw")
            .env("DM_TARGET_PASSWORD", "settle-tgt-pw")
            .stdin(Stdio::null())
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_waits_for_dm_to_pause_the_tasks_of_a_disabled_source() {
    // Stage changes take 1.5 s: long enough that a verification read at once sees the old stage.
    let opts = SimOptions {
        generation: Generation::V854,
        stage_delay: Duration::from_millis(1500),
        seed: Some(11),
        ..SimOptions::default()
    };
    let sim = SimServer::start(opts).await.expect("simulator");
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/single-mysql-incremental.yaml"))
            .unwrap();
    let file = dir.path().join("dm.yaml").display().to_string();
    std::fs::write(&file, &example).unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let o = run(s(&["apply", "-f", &file, "--auto-approve", "--addr", &url])).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    // The source is disabled; the task is still declared running (a contradiction the plan warns about).
    std::fs::write(&file, example.replace("    enable: true\n", "    enable: false\n")).unwrap();
    let o = run(s(&["apply", "-f", &file, "--auto-approve", "--addr", &url])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("disable source"), "{out}");
    assert!(
        !err.contains("Verified: a new plan shows no changes."),
        "the verification read the task's stage before DM paused it:\n{err}"
    );
    assert!(
        err.contains(
            "Verified: a new plan shows nothing more to apply now; still deferred or blocked: task.orders-incremental"
        ),
        "{err}"
    );

    // The next plan agrees with the verification.
    let o = run(s(&["plan", "-f", &file, "--addr", &url, "--detailed-exitcode"])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(out.contains("# task.orders-incremental will be started") && out.contains("BLOCKED"), "{out}");
    sim.shutdown().await;
}
