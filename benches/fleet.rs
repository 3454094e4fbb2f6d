//! Fleet-scale benchmark: `cargo bench --features testkit --bench fleet` (see docs/performance.md).
//!
//! Starts `dm-apply sim` (the release binary) with injected latency, writes fleets of N sources with 2 tasks each,
//! and runs the release `dm-apply` binary as a child process for apply, plan and drift (wall time, requests from the
//! simulator's request log, peak RSS of the child from `/usr/bin/time`), then a naive baseline (one GET per
//! resource, sequential), planning 10,000 tasks in memory, and `validate` of the examples and of fleet files.
//!
//! Flags (after `--`): `--sizes 10,100,1000`, `--latency-ms 5`, `--parallelism 10`, `--stage-delay-ms 5`,
//! `--plan-tasks 10000` (0: skip), `--runs 3` (runs of plan/drift per size; the median is printed),
//! `--validate-sizes 10,100,1000` (fleets of N sources and 2N tasks in one file, validated offline, 20 runs each),
//! `--naive 0` (skip the naive baseline, which takes ~40 s at 1,000 sources).

// The fixtures it plans with (`plan::testing`) are in debug builds, and in release only with the `testkit` feature.
#[cfg(not(any(debug_assertions, feature = "testkit")))]
compile_error!(
    "the fleet benchmark needs the library's test fixtures: run `cargo bench --features testkit --bench fleet`"
);

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::plan::{PlanOptions, make_plan, testing};
use dm_apply::sim::LoggedRequest;

// The in-memory planning runs in this process: with the allocator of the `dm-apply` binary, so it is measured as
// `dm-apply plan` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BIN: &str = env!("CARGO_BIN_EXE_dm-apply");
/// The state key every benchmarked run shares (docs/plan.md, "Keyed mode").
const STATE_KEY: &str = "bench-state-key-0123456789abcdef";
const PASSWORD_ENV: &str = "BENCH_DM_PASSWORD";

struct Args {
    sizes: Vec<usize>,
    latency_ms: u64,
    parallelism: usize,
    stage_delay_ms: u64,
    plan_tasks: usize,
    runs: usize,
    validate_sizes: Vec<usize>,
    naive: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        sizes: vec![10, 100, 1000],
        latency_ms: 5,
        parallelism: 10,
        stage_delay_ms: 5,
        plan_tasks: 10_000,
        runs: 3,
        validate_sizes: vec![10, 100, 1000],
        naive: true,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = argv.get(i + 1).cloned().unwrap_or_default();
        let num = || val.parse::<u64>().unwrap_or_else(|_| panic!("{} needs a number, got `{val}`", argv[i]));
        let list = || -> Vec<usize> {
            val.split(",")
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse().unwrap_or_else(|_| panic!("{}: numbers separated by commas", argv[i])))
                .collect()
        };
        match argv[i].as_str() {
            "--sizes" => a.sizes = list(),
            "--validate-sizes" => a.validate_sizes = list(),
            "--latency-ms" => a.latency_ms = num(),
            "--parallelism" => a.parallelism = num() as usize,
            "--stage-delay-ms" => a.stage_delay_ms = num(),
            "--plan-tasks" => a.plan_tasks = num() as usize,
            "--runs" => a.runs = (num() as usize).max(1),
            "--naive" => a.naive = num() != 0,
            // `cargo bench` passes `--bench`; anything else unknown is ignored too.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// N sources, each with 2 incremental tasks that run.
fn fleet_yaml(n: usize) -> String {
    fleet_yaml_range(0, n)
}

fn fleet_yaml_range(first: usize, n: usize) -> String {
    let mut y = String::from("sources:\n");
    for i in first..first + n {
        y += &format!(
            "  - source_name: src-{i:05}\n    host: mysql-{i:05}.db.internal\n    port: 3306\n    user: dm\n    \
             password: ${{env:{PASSWORD_ENV}}}\n    enable_gtid: true\n    enable: true\n"
        );
    }
    y += "tasks:\n";
    for i in first..first + n {
        for t in ["a", "b"] {
            y += &format!(
                "  - name: task-{i:05}-{t}\n    task_mode: incremental\n    target_config:\n      host: tidb.db.internal\n      \
                 port: 4000\n      user: dm\n      password: ${{env:{PASSWORD_ENV}}}\n    table_migrate_rule:\n      \
                 - source:\n          source_name: src-{i:05}\n          schema: db_{t}\n          table: \"*\"\n    \
                 source_config:\n      source_conf:\n        - source_name: src-{i:05}\n          binlog_name: mysql-bin.000001\n          binlog_pos: 4\n    stage: running\n"
            );
        }
    }
    y
}

/// One run of the dm-apply binary as a child.
struct ChildRun {
    wall: Duration,
    maxrss_kb: Option<u64>,
    /// The child's user + system CPU time (from `/usr/bin/time`).
    cpu: Option<Duration>,
    code: i32,
    stderr: String,
}

fn run_child(args: &[&str], addr: &str, dir: &Path) -> ChildRun {
    let time = Path::new("/usr/bin/time");
    let rss_file = dir.join("maxrss");
    let _ = std::fs::remove_file(&rss_file);
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M %U %S").arg("-o").arg(&rss_file).arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    cmd.args(args)
        .env("DM_APPLY_ADDR", addr)
        .env(PASSWORD_ENV, "bench-secret")
        // Keyed fingerprints, the recommended mode: without a key every tracked value costs an Argon2id check.
        .env("DM_APPLY_STATE_KEY", STATE_KEY)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd.output().expect("run dm-apply");
    let wall = start.elapsed();
    // The last line is `maxrss user system` (earlier lines, if any, are notes of `time`).
    let timed = std::fs::read_to_string(&rss_file).ok().and_then(|s| {
        s.lines().rev().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let rss = f.first()?.parse::<u64>().ok()?;
            let secs = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
            Some((rss, secs(1).zip(secs(2)).map(|(u, s)| Duration::from_secs_f64(u + s))))
        })
    });
    ChildRun {
        wall,
        maxrss_kb: timed.map(|t| t.0),
        cpu: timed.and_then(|t| t.1),
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// User + system CPU time of a process so far (Linux: `/proc/PID/stat`, in clock ticks of 10 ms).
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the 14th field.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The simulator as users run it: `dm-apply sim` in a process of its own (its runtime, allocator and memory
/// settings are the binary's, and it does not share this process's threads). Its request log is read over `/sim`.
struct Sim {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
}

impl Sim {
    fn start(workers: usize, latency_ms: u64, stage_delay_ms: u64) -> Sim {
        use std::io::BufRead;
        let mut child = Command::new(BIN)
            .args(["sim", "--listen", "127.0.0.1:0", "--seed", "1", "--generation", "v8.5.4"])
            .args(["--workers", &workers.to_string(), "--latency-ms", &latency_ms.to_string()])
            .args(["--stage-delay-ms", &stage_delay_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dm-apply sim");
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("read the simulator's first line");
        let url = line.trim().strip_prefix("dm-apply sim listening on ").expect("listening line").to_string();
        // Keep draining its stderr, so a full pipe never stalls it.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        // reqwest is built without a default TLS provider (the library installs ring's; see DmClient::new).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Sim { child, url, http: reqwest::Client::new() }
    }

    async fn request_log(&self) -> Vec<LoggedRequest> {
        let r = self.http.get(format!("{}/sim/requests", self.url)).send().await.expect("GET /sim/requests");
        r.json().await.expect("request log JSON")
    }

    async fn clear_log(&self) {
        self.http.delete(format!("{}/sim/requests", self.url)).send().await.expect("DELETE /sim/requests");
    }

    fn cpu(&self) -> Option<Duration> {
        process_cpu(self.child.id())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Row {
    what: String,
    wall: Duration,
    requests: usize,
    round_trips: usize,
    maxrss_kb: Option<u64>,
    ideal: Duration,
    note: String,
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// Longest chain of requests that had to follow each other in a plan/drift: the concurrent first wave, plus any
/// fallback. Counted as 1 when every request overlaps the first wave (the normal case).
fn plan_round_trips(log: &[dm_apply::sim::LoggedRequest]) -> usize {
    // Normal case: version, cluster info, sources, tasks with status, state template: one concurrent wave.
    // Anything beyond those five is a fallback read, counted as further round trips.
    1 + log.len().saturating_sub(5)
}

async fn naive_baseline(addr: &str, n: usize) -> (Duration, usize) {
    let client = DmClient::new(&ClientOptions::new(addr)).expect("client");
    let start = Instant::now();
    let mut count = 0;
    for i in 0..n {
        client.get_source(&format!("src-{i:05}"), false).await.expect("get source");
        count += 1;
        for t in ["a", "b"] {
            let name = format!("task-{i:05}-{t}");
            client.get_task(&name, false).await.expect("get task");
            client.task_status(&name).await.expect("task status");
            count += 2;
        }
    }
    (start.elapsed(), count)
}

/// Requests grouped by method and path shape (resource names replaced by `*`).
fn by_kind(log: &[dm_apply::sim::LoggedRequest]) -> String {
    let mut m = std::collections::BTreeMap::<String, usize>::new();
    for r in log {
        let shape: Vec<&str> =
            r.path.split('/').map(|p| if p.starts_with("src-") || p.starts_with("task-") { "*" } else { p }).collect();
        *m.entry(format!("{} {}", r.method, shape.join("/"))).or_default() += 1;
    }
    m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

async fn bench_fleet(a: &Args, n: usize, rows: &mut Vec<Row>) {
    let latency = Duration::from_millis(a.latency_ms);
    let sim = Sim::start(n, a.latency_ms, a.stage_delay_ms);
    let addr = sim.url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("fleet.yaml");
    std::fs::write(&cfg, fleet_yaml(n)).expect("write fleet");
    let cfg_s = cfg.to_string_lossy().to_string();
    let tasks = 2 * n;

    // apply (from empty): creates, starts and waits, then the verifying plan.
    sim.clear_log().await;
    let par = a.parallelism.to_string();
    let addr2 = addr.clone();
    let dir2 = dir.path().to_path_buf();
    let cfg2 = cfg_s.clone();
    let sim_cpu_before = sim.cpu();
    let r = tokio::task::spawn_blocking(move || {
        run_child(&["apply", "-f", &cfg2, "--auto-approve", "--parallelism", &par], &addr2, &dir2)
    })
    .await
    .expect("join");
    let sim_cpu = sim.cpu().zip(sim_cpu_before).map(|(b, a)| b.saturating_sub(a));
    assert_eq!(r.code, 0, "apply failed:\n{}", r.stderr);
    let log = sim.request_log().await;
    let (requests, mutating) = (log.len(), log.iter().filter(|r| r.mutating).count());
    eprintln!("apply {n}: requests by kind: {}", by_kind(&log));
    let secs = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()));
    eprintln!(
        "apply {n}: wall {:.2} s, CPU of dm-apply {}, CPU of the simulator {}",
        r.wall.as_secs_f64(),
        secs(r.cpu),
        secs(sim_cpu)
    );
    let changes = n + tasks;
    // Ideal: every change is one round trip (create; a task's start counted too), P at a time.
    let steps = mutating;
    let ideal = latency * steps as u32 / a.parallelism as u32;
    rows.push(Row {
        what: format!("apply {n}/{tasks}"),
        wall: r.wall,
        requests,
        round_trips: steps,
        maxrss_kb: r.maxrss_kb,
        ideal,
        note: format!(
            "{mutating} mutating; N·L/P with N={changes} changes: {} ms → {:.2}×",
            ms(latency * changes as u32 / a.parallelism as u32),
            r.wall.as_secs_f64() / (latency * changes as u32 / a.parallelism as u32).as_secs_f64().max(1e-9)
        ),
    });

    for (cmd, extra) in [("plan", vec!["--detailed-exitcode"]), ("drift", vec![])] {
        let mut walls = vec![];
        let mut rss = None;
        let mut requests = 0;
        let mut trips = 0;
        for _ in 0..a.runs {
            sim.clear_log().await;
            let mut args = vec![cmd.to_string(), "-f".into(), cfg_s.clone()];
            args.extend(extra.iter().map(|s| s.to_string()));
            let (addr2, dir2) = (addr.clone(), dir.path().to_path_buf());
            let r = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                run_child(&refs, &addr2, &dir2)
            })
            .await
            .expect("join");
            assert!(r.code == 0, "{cmd} exited {} (expected 0: no changes, no drift):\n{}", r.code, r.stderr);
            let log = sim.request_log().await;
            requests = log.len();
            trips = plan_round_trips(&log);
            walls.push(r.wall);
            rss = rss.max(r.maxrss_kb);
        }
        let wall = median(walls);
        rows.push(Row {
            what: format!("{cmd} {n}/{tasks}"),
            wall,
            requests,
            round_trips: trips,
            maxrss_kb: rss,
            ideal: latency * trips as u32,
            note: String::new(),
        });
    }

    if !a.naive {
        return;
    }
    // Naive baseline: one GET per resource, sequential (in process, no child start-up counted).
    let (wall, count) = naive_baseline(&addr, n).await;
    let plan_wall = rows.iter().rev().find(|r| r.what.starts_with("plan ")).map(|r| r.wall).unwrap_or_default();
    rows.push(Row {
        what: format!("naive {n}/{tasks}"),
        wall,
        requests: count,
        round_trips: count,
        maxrss_kb: None,
        ideal: latency * count as u32,
        note: format!("plan is {:.1}× faster", wall.as_secs_f64() / plan_wall.as_secs_f64().max(1e-9)),
    });
    drop(sim);
}

/// Planning `tasks` tasks (2 per source) in memory: against a live state equal to the configuration (the normal
/// case: no changes) and against an empty cluster (everything created).
fn bench_plan_in_memory(tasks: usize) -> (Duration, Duration) {
    let n = tasks.div_ceil(2);
    // SAFETY: single-threaded at this point of the benchmark (no other thread reads the environment).
    unsafe { std::env::set_var(PASSWORD_ENV, "bench-secret") };
    // In files of 500 sources: one YAML document has a node budget (250,000 nodes) that a single 10,000-task
    // file exceeds; real fleets are split into files too.
    let mut desired = dm_apply::config::Desired::default();
    for chunk in 0..n.div_ceil(500) {
        let count = 500.min(n - chunk * 500);
        let yaml = fleet_yaml_range(chunk * 500, count).replace(&format!("${{env:{PASSWORD_ENV}}}"), "bench-secret");
        let part = testing::desired_from_yaml(&format!("fleet-{chunk}.yaml"), &yaml).expect("fleet parses");
        desired.sources.extend(part.sources);
        desired.tasks.extend(part.tasks);
    }
    let version = dm_apply::dm::ServerVersion::parse("v26.4.0-alpha");
    let live = testing::live_after_apply(&desired, &version, 1);
    let empty = dm_apply::live::Live::empty("http://127.0.0.1:8261", version);
    let opts = PlanOptions::default();
    let mut same = vec![];
    let mut fresh = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let p = make_plan(&desired, &live, &opts).expect("plan");
        same.push(t.elapsed());
        assert!(!p.has_changes(), "in-memory plan of an applied fleet shows changes");
        let t = Instant::now();
        let p = make_plan(&desired, &empty, &opts).expect("plan");
        fresh.push(t.elapsed());
        assert!(p.has_changes());
    }
    (median(same), median(fresh))
}

/// `dm-apply validate -f <path>` as a process, `runs` times: the median wall time, and the peak RSS of one more
/// run under `/usr/bin/time` (not timed: that wrapper's own start-up would count).
fn bench_validate(path: &Path, runs: usize) -> (Duration, Option<u64>) {
    let validate = |cmd: &mut Command| {
        let out = cmd
            .args(["validate", "-f"])
            .arg(path)
            .env("DM_SOURCE_PASSWORD", "x")
            .env("DM_TARGET_PASSWORD", "x")
            .env(PASSWORD_ENV, "bench-secret")
            // Keyed fingerprints, the recommended mode: without a key every tracked value costs an Argon2id check.
            .env("DM_APPLY_STATE_KEY", STATE_KEY)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run validate");
        assert!(out.success(), "validate of {} failed", path.display());
    };
    let mut walls = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        validate(&mut Command::new(BIN));
        walls.push(t.elapsed());
    }
    let time = Path::new("/usr/bin/time");
    let dir = tempfile::tempdir().expect("tempdir");
    let rss_file = dir.path().join("maxrss");
    let rss = time.exists().then(|| {
        validate(Command::new(time).arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(BIN));
        std::fs::read_to_string(&rss_file).ok().and_then(|s| s.lines().rev().find_map(|l| l.trim().parse().ok()))
    });
    (median(walls), rss.flatten())
}

/// `validate` of one file holding a fleet of `n` sources and `2n` tasks (the configuration `plan` loads first).
fn bench_validate_fleet(n: usize, runs: usize) -> (Duration, Option<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("fleet.yaml");
    std::fs::write(&cfg, fleet_yaml(n)).expect("write fleet");
    bench_validate(&cfg, runs)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let a = parse_args();
    eprintln!(
        "fleet benchmark: latency {} ms, parallelism {}, stage delay {} ms, sizes {:?}, load average {}",
        a.latency_ms,
        a.parallelism,
        a.stage_delay_ms,
        a.sizes,
        loadavg()
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut rows = vec![];
    for &n in &a.sizes {
        eprintln!("fleet of {n} sources / {} tasks ...", 2 * n);
        rt.block_on(bench_fleet(&a, n, &mut rows));
    }
    let planned = (a.plan_tasks > 0).then(|| bench_plan_in_memory(a.plan_tasks));
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (validate, _) = bench_validate(&examples, 20);
    let validated: Vec<(usize, (Duration, Option<u64>))> =
        a.validate_sizes.iter().map(|&n| (n, bench_validate_fleet(n, 20))).collect();

    println!(
        "\n| operation (sources/tasks) | wall ms | requests | round trips | ideal ms | wall / ideal | peak RSS MB | note |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {} | {} |",
            r.what,
            ms(r.wall),
            r.requests,
            r.round_trips,
            ms(r.ideal),
            r.wall.as_secs_f64() / r.ideal.as_secs_f64().max(1e-9),
            r.maxrss_kb.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into()),
            r.note
        );
    }
    let mb = |kb: Option<u64>| kb.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into());
    let msf = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!("\n| in memory / offline | median ms | peak RSS MB |\n|---|---:|---:|");
    if let Some((same, fresh)) = planned {
        println!("| make_plan, {} tasks, live = desired (no changes) | {} | - |", a.plan_tasks, msf(same));
        println!("| make_plan, {} tasks, empty cluster (all created) | {} | - |", a.plan_tasks, msf(fresh));
    }
    println!("| dm-apply validate examples/ (process, 20 runs) | {} | - |", msf(validate));
    for (n, (wall, rss)) in &validated {
        println!(
            "| dm-apply validate, {n} sources / {} tasks in one file (process, 20 runs) | {} | {} |",
            2 * n,
            msf(*wall),
            mb(*rss)
        );
    }
    eprintln!("load average at the end: {}", loadavg());
}
