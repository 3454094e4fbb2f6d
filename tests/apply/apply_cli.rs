//! The real binary against an in-process simulator over HTTP: the end-to-end happy path on the examples, the
//! refusal without approval, saved plans, and exit codes.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use dm_apply::sim::{Generation, SimOptions, SimServer};

const SOURCE_PW: &str = "cli-source-pw-0xdead";
const TARGET_PW: &str = "cli-target-pw-0xbeef";

fn bin() -> Command {
    let mut c = bin_env(Command::new(env!("CARGO_BIN_EXE_dm-apply")));
    c.stdin(Stdio::null());
    c
}

/// Run the binary off the async runtime (the simulator runs on it).
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || bin().args(&args).output().expect("binary runs")).await.expect("join")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

async fn sim(generation: Generation) -> SimServer {
    // The examples declare five sources: one worker each.
    SimServer::start(SimOptions { generation, workers: 6, seed: Some(3), ..SimOptions::default() })
        .await
        .expect("simulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_examples_then_plan_shows_no_changes() {
    for g in Generation::ALL {
        let sim = sim(g).await;
        let url = sim.url();
        let o = run(args(&["apply", "-f", "examples", "--auto-approve", "--addr", &url])).await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{g:?}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(out.contains("Plan: "), "the plan is shown: {out}");
        assert!(out.contains("Apply complete! Resources: 8 added, 0 changed, 0 destroyed."), "{out}");
        assert!(err.contains("Verified: a new plan shows no changes."), "{err}");
        for secret in [SOURCE_PW, TARGET_PW] {
            assert!(!out.contains(secret) && !err.contains(secret), "a password leaked");
        }

        let o = run(args(&["plan", "-f", "examples", "--detailed-exitcode", "--addr", &url])).await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{g:?}\n{out}\n{err}");
        assert!(out.contains("No changes."), "{out}");

        // A second apply has nothing to do.
        let o = run(args(&["apply", "-f", "examples", "--auto-approve", "--addr", &url])).await;
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        let mutating = sim.control().request_log().iter().filter(|r| r.mutating).count();
        let o2 = run(args(&["apply", "-f", "examples", "--auto-approve", "--addr", &url])).await;
        assert_eq!(o2.status.code(), Some(0));
        assert_eq!(sim.control().request_log().iter().filter(|r| r.mutating).count(), mutating, "no-op apply mutated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_and_without_auto_approve_nothing_is_touched() {
    let sim = sim(Generation::Head).await;
    let url = sim.url();
    let o = run(args(&["apply", "-f", "examples", "--addr", &url])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("refusing to apply without approval"), "{err}");
    assert!(err.contains("--auto-approve"), "{err}");
    assert!(out.contains("Plan: 8 to add, 0 to change, 0 to destroy."), "the plan is still shown: {out}");
    let log = sim.control().request_log();
    assert!(!log.is_empty(), "the plan read DM");
    assert!(log.iter().all(|r| !r.mutating), "a mutating request was sent: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_exits_1_and_lists_every_step() {
    let sim = sim(Generation::Head).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dm.yaml");
    std::fs::write(
        &cfg,
        r#"
sources:
  - {source_name: good, host: good.internal, port: 3306, user: dm, password: "${env:DM_SOURCE_PASSWORD}", enable: true}
  - {source_name: bad, host: mysql.unreachable, port: 3306, user: dm, password: "${env:DM_SOURCE_PASSWORD}", enable: true}
"#,
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let o = run(args(&["apply", "-f", &cfg, "--auto-approve", "--addr", &url])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains(
            "FAILED       source.bad: create source: DM-master refused POST /api/v1/sources: HTTP 400, DM error 10001"
        ),
        "{out}"
    );
    assert!(out.contains("done         source.good: create source"), "{out}");
    assert!(out.contains("Apply failed: 1 of "), "{out}");
    assert!(out.contains("Resources: 1 added, 0 changed, 0 destroyed."), "{out}");
    assert!(!out.contains(SOURCE_PW) && !err.contains(SOURCE_PW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_plans_apply_exactly_and_stale_ones_are_refused() {
    let sim = sim(Generation::Head).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let f = file.display().to_string();
    let o = run(args(&["plan", "-f", "examples", "--out", &f, "--addr", &url])).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let saved = std::fs::read_to_string(Path::new(&f)).unwrap();
    assert!(!saved.contains(SOURCE_PW) && !saved.contains(TARGET_PW), "a secret was written to the plan file");

    // A stale plan: DM changes between plan and apply.
    let stale = dir.path().join("stale.json").display().to_string();
    std::fs::copy(&f, &stale).unwrap();

    let o = run(args(&["apply", "--plan", &f, "--addr", &url])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "a saved plan needs no prompt\n{out}\n{err}");
    assert!(out.contains("Apply complete! Resources: 8 added"), "{out}");

    let o = run(args(&["apply", "--plan", &stale, "--addr", &url])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("stale"), "{err}");
    let o = run(args(&["plan", "-f", "examples", "--detailed-exitcode", "--addr", &url])).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_scheduling_lets_steps_in_flight_finish_and_reports() {
    use std::io::BufRead;
    let sim = sim(Generation::Head).await;
    // Slow answers, one step at a time: there is time to interrupt between steps.
    sim.control().set_latency(std::time::Duration::from_millis(100));
    let url = sim.url();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = bin()
            .args(["apply", "-f", "examples", "--auto-approve", "--parallelism", "1", "--addr", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let pid = child.id().to_string();
        let mut err_lines = vec![];
        let mut sent = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            // After the first step finished, press Ctrl-C.
            if !sent && line.contains(": done after") {
                Command::new("kill").args(["-INT", &pid]).status().expect("kill");
                sent = true;
            }
            err_lines.push(line);
        }
        let o = child.wait_with_output().expect("wait");
        (o, err_lines.join("\n"))
    })
    .await
    .unwrap();
    let (o, err) = out;
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(130), "stdout:\n{stdout}\nstderr:\n{err}");
    assert!(err.contains("Interrupted: no new step will start"), "{err}");
    assert!(stdout.contains("Apply interrupted: 0 of "), "{stdout}");
    assert!(stdout.contains("not started "), "{stdout}");
    // Every step the report lists as done really happened, and nothing else did.
    let done = stdout.lines().filter(|l| l.trim_start().starts_with("done ")).count();
    let log = sim.control().request_log();
    let record = |r: &&dm_apply::sim::LoggedRequest| r.path.starts_with("/api/v1/tasks/templates");
    let mutating = log.iter().filter(|r| r.mutating && !record(r)).count();
    assert!((1..20).contains(&done), "{stdout}");
    assert_eq!(mutating, done, "every done step is one request here (creates): {stdout}");
    // The apply lease was taken before the first step and released after the interrupt.
    assert_eq!(log.iter().filter(|r| r.mutating && record(r)).count(), 2, "lease take + release: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_limits_the_apply_to_a_resource_and_what_it_needs() {
    let sim = sim(Generation::V853).await;
    let url = sim.url();
    let o = run(args(&[
        "apply",
        "-f",
        "examples",
        "--target",
        "task.orders-incremental",
        "--auto-approve",
        "--addr",
        &url,
    ]))
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("Apply complete! Resources: 2 added, 0 changed, 0 destroyed."), "{out}");
    assert!(out.contains("targeting is in effect"), "{out}");
    let created: Vec<String> = sim
        .control()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && (r.path == "/api/v1/sources" || r.path == "/api/v1/tasks"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(created, ["/api/v1/sources", "/api/v1/tasks"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_difference_left_after_applying_fails_verification() {
    let sim = sim(Generation::Head).await;
    let ctl = sim.control();
    let url = sim.url();
    // Someone changes a task right when apply starts verifying (the second read of the cluster info): every
    // request waits 50 ms before it reads the state, so the change lands before the verification's task list.
    ctl.set_latency(std::time::Duration::from_millis(50));
    let watcher = {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            loop {
                let n = ctl.request_log().iter().filter(|r| r.path == "/api/v1/cluster/info").count();
                if n >= 2 {
                    ctl.patch_task(
                        "orders-incremental",
                        serde_json::json!({"source_config": {"incr_migrate_conf": {"repl_batch": 7}}}),
                    )
                    .expect("patch");
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    let o = run(args(&["apply", "-f", "examples", "--auto-approve", "--addr", &url])).await;
    watcher.await.unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("Apply complete!"), "{out}");
    assert!(err.contains("verification failed"), "{err}");
    assert!(err.contains("task.orders-incremental (update)"), "{err}");

    // --no-verify skips the check.
    let o = run(args(&["apply", "-f", "examples", "--auto-approve", "--no-verify", "--addr", &url])).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(!text(&o).1.contains("Verified"));
}

/// Run the binary on a pseudo-terminal (util-linux `script`), typing `answer` at the prompt. `None` when `script`
/// is not installed.
async fn run_on_tty(url: String, answer: &'static str) -> Option<(Option<i32>, String)> {
    let has_script = Command::new("script").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has_script {
        return None;
    }
    let bin = env!("CARGO_BIN_EXE_dm-apply");
    Some(
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let cmd = format!("{bin} apply -f examples --addr {url}");
            let mut c = bin_env(Command::new("script"));
            let mut child = c
                .args(["-qec", &cmd, "/dev/null"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("script");
            child.stdin.take().expect("stdin").write_all(answer.as_bytes()).expect("type the answer");
            let o = child.wait_with_output().expect("wait");
            (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
        })
        .await
        .expect("join"),
    )
}

fn bin_env(mut c: Command) -> Command {
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DM_APPLY_ADDR")
        .env("NO_COLOR", "1")
        .env("DM_SOURCE_PASSWORD", SOURCE_PW)
        .env("DM_TARGET_PASSWORD", TARGET_PW);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_only_yes_approves() {
    let sim = sim(Generation::Head).await;
    let Some((code, out)) = run_on_tty(sim.url(), "no\n").await else {
        eprintln!("skipped: util-linux `script` is not installed, so no pseudo-terminal can be made");
        return;
    };
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Do you want to perform these actions?"), "{out}");
    assert!(out.contains("Only 'yes' will be accepted to approve."), "{out}");
    assert!(out.contains("Apply cancelled. Nothing was changed."), "{out}");
    assert!(sim.control().request_log().iter().all(|r| !r.mutating), "answering no changed DM");

    let (code, out) = run_on_tty(sim.url(), "yes\n").await.expect("script");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Apply complete! Resources: 8 added, 0 changed, 0 destroyed."), "{out}");
    assert!(!out.contains(SOURCE_PW) && !out.contains(TARGET_PW));
}
