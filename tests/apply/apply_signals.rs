//! SIGINT, SIGTERM and SIGHUP take one path through the real binary: no new step starts, operations in flight
//! finish, waits and the verification end at once, the report says exactly what happened (done, not started,
//! interrupted, and which tasks are left stopped that should run), and the exit code is 130. A second signal exits
//! at once. Each scenario widens the window with the simulator's latency or stage delay and sends the signal when
//! the binary says a step is in flight (or, for the verification, when the simulator has received its first
//! request); nothing is asserted on wall time. The report is compared with the simulator's state.

use std::io::BufRead;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use dm_apply::dm::types::Stage;
use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::sim::{SimControl, SimOptions, SimServer};

const SOURCE_PW: &str = "signals-source-pw-5e1f";
const TARGET_PW: &str = "signals-target-pw-a2c9";

fn config(purge_interval: u32, tasks: &[&str]) -> String {
    let task = |name: &str| {
        format!(
            r#"
  - name: {name}
    task_mode: incremental
    meta_schema: dm_meta
    enhance_online_schema_change: true
    on_duplicate: replace
    target_config: {{host: tidb.internal, port: 4000, user: root, password: "${{env:DM_TARGET_PASSWORD}}"}}
    table_migrate_rule:
      - source: {{source_name: mysql-a, schema: {name}, table: "*"}}
    source_config:
      source_conf:
        - {{source_name: mysql-a, binlog_name: mysql-bin.000001, binlog_pos: 4}}
    stage: running"#
        )
    };
    format!(
        r#"sources:
  - source_name: mysql-a
    host: mysql-a.internal
    port: 3306
    user: dm
    password: "${{env:DM_SOURCE_PASSWORD}}"
    enable_gtid: false
    enable: true
    purge: {{interval: {purge_interval}}}
tasks:{}
"#,
        tasks.iter().map(|t| task(t)).collect::<String>()
    )
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    c.env_remove("DM_APPLY_ADDR")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("DM_SOURCE_PASSWORD", SOURCE_PW)
        .env("DM_TARGET_PASSWORD", TARGET_PW)
        .stdin(Stdio::null());
    c
}

fn spawn(args: &[&str]) -> Child {
    bin().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn dm-apply")
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("kill");
    assert!(ok.success(), "kill -{signal} {pid}");
}

/// Run the binary; each time a stderr line matches the next trigger, send its signal. Returns the output, the
/// whole stderr, and how many signals were sent.
async fn run_with_signals(args: Vec<String>, triggers: Vec<(&'static str, &'static str)>) -> (Output, String, usize) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = spawn(&args);
        let pid = child.id();
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = vec![];
        let mut next = triggers.into_iter().peekable();
        let mut sent = 0;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if let Some((pattern, signal)) = next.peek()
                && line.contains(pattern)
            {
                kill(pid, signal);
                sent += 1;
                next.next();
            }
            lines.push(line);
        }
        let o = child.wait_with_output().expect("wait");
        (o, lines.join("\n"), sent)
    })
    .await
    .expect("join")
}

async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || bin().args(&args).output().expect("run")).await.expect("join")
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let p = dir.path().join("dm.yaml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

async fn stage_of(url: &str, task: &str) -> Vec<Stage> {
    let client = DmClient::new(&ClientOptions::new(url.to_string())).unwrap();
    client.task_status(task).await.expect("status").into_iter().map(|s| s.stage).collect()
}

async fn sim(stage_delay: Duration) -> (SimServer, SimControl, String) {
    let sim = SimServer::start(SimOptions { seed: Some(11), stage_delay, ..SimOptions::default() }).await.unwrap();
    let (ctl, url) = (sim.control(), sim.url());
    (sim, ctl, url)
}

/// The source update stops both tasks; the signal comes while its PUT is in flight. The PUT finishes, the
/// restarts never start: both tasks are left stopped, and the report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_a_step_lets_it_finish_and_reports_the_tasks_left_stopped() {
    for (signal, name, json) in [("TERM", "SIGTERM", false), ("HUP", "SIGHUP", true), ("INT", "SIGINT", false)] {
        let (_sim, ctl, url) = sim(Duration::from_millis(20)).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(&dir, &config(3600, &["t1", "t2"]));
        let o = run(&["apply", "-f", &cfg, "--auto-approve", "--addr", &url]).await;
        assert_eq!(o.status.code(), Some(0), "setup: {}", String::from_utf8_lossy(&o.stderr));
        for t in ["t1", "t2"] {
            assert_eq!(stage_of(&url, t).await, [Stage::Running], "setup: {t} runs");
        }

        write_config(&dir, &config(7200, &["t1", "t2"]));
        ctl.set_latency(Duration::from_millis(300));
        ctl.clear_log();
        let mut args = vec!["apply", "-f", &cfg, "--auto-approve", "--parallelism", "1", "--addr", &url];
        if json {
            args.extend(["-o", "json"]);
        }
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (o, err, sent) = run_with_signals(args, vec![("source.mysql-a: update source...", signal)]).await;
        ctl.set_latency(Duration::ZERO);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(sent, 1, "{signal}: the update step never started:\n{err}");
        assert_eq!(o.status.code(), Some(130), "{signal}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains(&format!("Received {name}")), "{err}");
        assert!(err.contains("Interrupted: no new step will start"), "{err}");
        assert!(!out.contains("Apply complete") && !err.contains("Apply complete"), "{out}\n{err}");

        // DM's state: the PUT landed, nothing was started again, both tasks are stopped.
        let log = ctl.request_log();
        let put = log.iter().position(|r| r.method == "PUT" && r.path == "/api/v1/sources/mysql-a");
        let put = put.expect("the update in flight finished");
        assert!(
            !log[put..].iter().any(|r| r.method == "POST" && r.path.ends_with("/start")),
            "a start was sent after the signal: {log:?}"
        );
        let mut stopped = vec![];
        for t in ["t1", "t2"] {
            if stage_of(&url, t).await.iter().all(|s| *s != Stage::Running) {
                stopped.push(t);
            }
        }
        assert_eq!(stopped, ["t1", "t2"], "both tasks were stopped for the update");

        // The report says the same.
        if json {
            let v: serde_json::Value = serde_json::from_str(&out).expect("JSON report on stdout");
            assert_eq!(v["format_version"], "1.1");
            assert_eq!(v["status"], "interrupted");
            assert_eq!(v["exit_code"], 130);
            let left: Vec<&str> =
                v["left_stopped"].as_array().unwrap().iter().map(|l| l["task"].as_str().unwrap()).collect();
            assert_eq!(left, stopped, "{out}");
            assert!(v["left_stopped"].as_array().unwrap().iter().all(|l| l["reason"] == "stopped_by_apply"));
            let step = |label: &str| {
                v["steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| {
                        format!("{}: {}", s["resource"].as_str().unwrap(), s["action"].as_str().unwrap()) == label
                    })
                    .cloned()
                    .unwrap_or_else(|| panic!("{label} in {out}"))
            };
            assert_eq!(step("source.mysql-a: update source")["outcome"], "done");
            assert_eq!(step("task.t1: start task on mysql-a")["outcome"], "not_started");
            assert!(
                v["left_stopped"].as_array().unwrap().iter().all(|l| l["sources"] == serde_json::json!(["mysql-a"]))
            );
            assert_eq!(v["verification"]["status"], "not_run");
            assert!(
                err.contains(
                    "Tasks left stopped that the configuration wants running: t1 (on mysql-a), t2 (on mysql-a)"
                ),
                "{err}"
            );
            assert!(err.contains("Apply interrupted: "), "the closing line for people is on stderr: {err}");
        } else {
            assert!(out.contains("done         source.mysql-a: update source"), "{out}");
            assert!(out.contains("done         task.t1: stop task on mysql-a"), "{out}");
            assert!(out.contains("not started  task.t1: start task on mysql-a: interrupted"), "{out}");
            assert!(out.contains("not started  task.t2: start task on mysql-a: interrupted"), "{out}");
            assert!(
                out.contains(
                    "Tasks left stopped that the configuration wants running: t1 (on mysql-a), t2 (on mysql-a) (run \
                     `dm-apply apply` again to converge)"
                ),
                "{out}"
            );
            let last = out.trim_end().lines().last().unwrap_or_default();
            assert!(last.starts_with("Apply interrupted: 0 of "), "{out}");
        }
        for secret in [SOURCE_PW, TARGET_PW] {
            assert!(!out.contains(secret) && !err.contains(secret));
        }

        // As the report says: running apply again converges.
        let o = run(&["apply", "-f", &cfg, "--auto-approve", "--addr", &url]).await;
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        for t in ["t1", "t2"] {
            assert_eq!(stage_of(&url, t).await, [Stage::Running], "{t} runs again");
        }
    }
}

/// A wait for Running that would last the whole stage delay (minutes) ends at once on Ctrl-C: the report shows it
/// interrupted (the start was sent), never "Apply complete!", exit 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_a_wait_for_running_at_once() {
    let (_sim, ctl, url) = sim(Duration::from_secs(600)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(3600, &["t1"]));
    let args: Vec<String> =
        ["apply", "-f", &cfg, "--auto-approve", "--addr", &url].iter().map(|s| s.to_string()).collect();
    let (o, err, sent) = run_with_signals(args, vec![("wait until Running...", "INT")]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(sent, 1, "{err}");
    assert_eq!(o.status.code(), Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(
            "interrupted  task.t1: wait until Running: interrupted while waiting for Running: the start was sent"
        ),
        "{out}"
    );
    assert!(out.contains("done         task.t1: start task"), "{out}");
    assert!(!out.contains("Apply complete") && !err.contains("Apply complete"), "{out}");
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Apply interrupted: 0 of ") && last.contains(" interrupted"), "{out}");
    // The start was sent: DM has the task starting, not stopped by us, so it is not "left stopped".
    assert!(!out.contains("Tasks left stopped"), "{out}");
    assert!(!err.contains("Verified"), "no verification after an interruption: {err}");
    assert!(
        ctl.request_log().iter().any(|r| r.method == "POST" && r.path == "/api/v1/tasks/t1/start"),
        "the report says the start was sent"
    );
    assert_ne!(stage_of(&url, "t1").await, [Stage::Running], "still starting when the wait was cut short");
}

/// Ctrl-C while apply plans again to verify: the verification ends at once; the run is reported interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_the_verification_interrupts_it() {
    let (_sim, ctl, url) = sim(Duration::from_millis(20)).await;
    ctl.set_latency(Duration::from_millis(400));
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(3600, &["t1"]));
    let mut child = spawn(&["apply", "-f", &cfg, "--auto-approve", "--addr", &url]);
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stderr).lines().map(|l| l.unwrap_or_default()).collect::<Vec<_>>().join("\n")
    });
    // The verification reads the cluster info again (the second read of the run): its answer is held by the
    // latency when the signal comes.
    let mut sent = false;
    for _ in 0..60_000 {
        if ctl.request_log().iter().filter(|r| r.path == "/api/v1/cluster/info").count() >= 2 {
            kill(pid, "INT");
            sent = true;
            break;
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait")).await.unwrap();
    let err = reader.join().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(sent, "the verification never started:\n{out}\n{err}");
    assert_eq!(o.status.code(), Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(!err.contains("Verified"), "{err}");
    assert!(!out.contains("Apply complete"), "{out}");
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Apply interrupted: 0 of "), "{out}");
    assert!(!out.contains(" not started ") && !out.contains("Tasks left stopped"), "every step was done: {out}");
}

/// A second signal does not wait for anything: one line, exit 130, no report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let (_sim, ctl, url) = sim(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(3600, &["t1"]));
    // Every answer takes 3 s: the step in flight is still in flight when the second signal comes.
    ctl.set_latency(Duration::from_secs(3));
    let args: Vec<String> = ["apply", "-f", &cfg, "--auto-approve", "--parallelism", "1", "--addr", &url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (o, err, sent) =
        run_with_signals(args, vec![("source.mysql-a: create source...", "TERM"), ("Received SIGTERM", "TERM")]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(sent, 2, "{err}");
    assert_eq!(o.status.code(), Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("Received SIGTERM again: exiting at once"), "{err}");
    assert!(!out.contains("Apply "), "no report after the second signal: {out}");
}
