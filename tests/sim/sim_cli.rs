//! `dm-apply sim` as a process: starts fast, prints its address on stderr, serves, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sim_command_listens_serves_and_stops_on_sigterm() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["sim", "--listen", "127.0.0.1:0", "--workers", "2", "--generation", "v8.5", "--seed", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dm-apply sim");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let url = first.strip_prefix("dm-apply sim listening on ").expect("the announced line").to_string();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "{first}");
    // "Well under a second" is what users see; allow for a loaded CI machine without making it a timing test.
    assert!(started.elapsed() < Duration::from_secs(30));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = dm_apply::dm::DmClient::new(&dm_apply::dm::ClientOptions::new(url.clone())).unwrap();
        assert_eq!(c.server_version().await.unwrap().raw, "v8.5.3");
        assert_eq!(c.list_workers().await.unwrap().len(), 2);
    });

    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "exit status {exit:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.is_empty(), "nothing on stdout: {out}");
}

#[test]
fn sim_command_rejects_bad_knobs() {
    for args in [["--generation", "v7"], ["--fault-rate", "2"], ["--fault-kinds", "boom"], ["--openapi", "maybe"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
            .args(["sim", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}

/// Start `dm-apply sim` with `args`, run `check` against its URL, stop it with SIGTERM.
fn with_sim(args: &[&str], check: impl FnOnce(&str)) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["sim", "--listen", "127.0.0.1:0", "--seed", "1"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dm-apply sim");
    let stderr = child.stderr.take().unwrap();
    // Stops the simulator even when `check` panics.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(child);
    let first = BufReader::new(stderr).lines().next().expect("a line").expect("utf-8");
    let url = first.strip_prefix("dm-apply sim listening on ").expect("the announced line").to_string();
    check(&url);
}

fn get(url: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::builder().no_proxy().build().unwrap().get(url).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

#[test]
fn sim_command_generations_by_name_default_v854() {
    for (args, want) in [
        (vec![], "v8.5.4"),
        (vec!["--generation", "v8.5.3"], "v8.5.3"),
        (vec!["--generation", "v8.5.6"], "v8.5.4"),
        (vec!["--generation", "v26.3"], "v26.3.3"),
        (vec!["--generation", "head"], "v26.4.0-alpha"),
    ] {
        with_sim(&args, |url| {
            let (code, text) = get(&format!("{url}/status"));
            assert_eq!(code, 200);
            assert!(text.starts_with(&format!("Release Version: {want}\n")), "{args:?}: {text}");
        });
    }
}

#[test]
fn sim_command_openapi_off_answers_plain_404() {
    with_sim(&["--openapi", "off"], |url| {
        assert_eq!(get(&format!("{url}/api/v1/sources")), (404, "404 page not found\n".to_string()));
        assert_eq!(get(&format!("{url}/status")).0, 200);
    });
}
