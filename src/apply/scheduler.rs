//! The scheduler loop: runs a [`StepGraph`] with bounded parallelism, in dependency order.
//!
//! It is generic over the function that runs one step, so its rules are unit-tested without HTTP:
//! - a step starts once every step it depends on has finished, at most `parallelism` at a time, lowest id first;
//! - a step whose `Requires` dependency did not succeed is skipped (and so are its own dependents);
//! - with `fail_fast`, the first failure stops scheduling; cancellation (SIGINT, SIGTERM, SIGHUP) does the same;
//!   steps in flight run to their end (a wait for a task's stage ends at once and is reported interrupted), and
//!   whatever never started is reported as such;
//! - a dependency cycle (a bug) leaves its steps "not started" instead of hanging.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

use super::Cancel;
use super::graph::{Countdown, StepGraph, StepId, StepKind};
use super::report::{ApplyReport, Event, Failure, Outcome, StepInfo, StepReport, StopReason, TaskOp};

/// What running one step returns: a note for the report, or why it failed.
pub type StepResult = Result<Option<String>, Failure>;

pub(crate) async fn run_graph<F, Fut>(
    graph: Arc<StepGraph>,
    parallelism: usize,
    fail_fast: bool,
    cancel: &Cancel,
    deadline: Option<tokio::time::Instant>,
    events: &UnboundedSender<Event>,
    run_step: F,
) -> ApplyReport
where
    F: Fn(StepId) -> Fut,
    Fut: Future<Output = StepResult> + Send + 'static,
{
    let parallelism = parallelism.max(1);
    let mut countdown = Countdown::new(&graph);
    let mut ready: BTreeSet<StepId> = countdown.ready().collect();
    let mut outcomes: BTreeMap<StepId, (Outcome, Duration)> = BTreeMap::new();
    let mut running: HashMap<tokio::task::Id, StepId> = HashMap::new();
    // Steps that mostly wait do not take one of the `parallelism` slots, or waiting would dominate: waits for a
    // task's stage sleep between status polls (bounded separately, see `ops::wait_task`), and state record steps
    // queue for the single writer of the record, which writes them all at once (`ops::record_state`).
    let is_wait = |id: StepId| {
        graph.step(id).is_some_and(|s| matches!(s.kind, StepKind::WaitTask { .. } | StepKind::RecordState { .. }))
    };
    let mut waits_running = 0usize;
    // The ready waits apart, so a full scheduler finds the next one without scanning every ready step.
    let mut ready_waits: BTreeSet<StepId> = ready.iter().copied().filter(|&i| is_wait(i)).collect();
    let mut set: JoinSet<(StepResult, Duration)> = JoinSet::new();
    let mut stop: Option<StopReason> = None;
    let info = |id: StepId| graph.step(id).map(StepInfo::of).unwrap_or_else(|| unknown_step(id));

    let _ = events.send(Event::Begin { total: graph.len() });
    if cancel.is_cancelled() {
        stop = Some(StopReason::Interrupted);
        let _ = events.send(Event::Stopping { reason: StopReason::Interrupted });
    }

    // Polled only while nothing has stopped the run, so it never fires twice.
    let deadline_passed = async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline_passed);

    loop {
        // Start (or skip) what is ready, lowest id first.
        while stop.is_none() {
            // With every slot taken, only a wait may start.
            let full = running.len() - waits_running >= parallelism;
            let next = if full { ready_waits.first() } else { ready.first() };
            let Some(&id) = next else { break };
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                stop = Some(StopReason::Deadline);
                let _ = events.send(Event::Stopping { reason: StopReason::Deadline });
                break;
            }
            if let Some(root) = failed_root(&graph, &outcomes, id) {
                ready.remove(&id);
                ready_waits.remove(&id);
                let outcome = Outcome::Skipped { because: root, because_label: info(root).label() };
                let _ =
                    events.send(Event::Finished { step: info(id), outcome: outcome.clone(), elapsed: Duration::ZERO });
                outcomes.insert(id, (outcome, Duration::ZERO));
                release(id, &mut countdown, &mut ready, &mut ready_waits, &is_wait);
                continue;
            }
            ready.remove(&id);
            ready_waits.remove(&id);
            let _ = events.send(Event::Started { step: info(id) });
            let fut = run_step(id);
            let handle = set.spawn(async move {
                let t = Instant::now();
                let r = fut.await;
                (r, t.elapsed())
            });
            running.insert(handle.id(), id);
            waits_running += usize::from(is_wait(id));
        }

        if running.is_empty() {
            break;
        }

        tokio::select! {
            joined = set.join_next_with_id() => {
                let Some(joined) = joined else { break };
                let (task_id, result, elapsed) = match joined {
                    Ok((tid, (r, d))) => (tid, r, d),
                    Err(e) => (e.id(), Err(Failure::new(format!("internal error: the step crashed: {e}"))), Duration::ZERO),
                };
                let Some(id) = running.remove(&task_id) else { continue };
                waits_running -= usize::from(is_wait(id));
                let outcome = match result {
                    Ok(note) => Outcome::Done { note },
                    Err(failure) if failure.interrupted => Outcome::Interrupted { detail: failure.message },
                    Err(failure) => Outcome::Failed { failure },
                };
                let failed = matches!(outcome, Outcome::Failed { .. });
                let _ = events.send(Event::Finished { step: info(id), outcome: outcome.clone(), elapsed });
                outcomes.insert(id, (outcome, elapsed));
                release(id, &mut countdown, &mut ready, &mut ready_waits, &is_wait);
                if failed && fail_fast && stop.is_none() {
                    stop = Some(StopReason::FailFast);
                    let _ = events.send(Event::Stopping { reason: StopReason::FailFast });
                }
            }
            () = cancel.cancelled(), if stop.is_none() => {
                stop = Some(StopReason::Interrupted);
                let _ = events.send(Event::Stopping { reason: StopReason::Interrupted });
            }
            () = &mut deadline_passed, if stop.is_none() => {
                stop = Some(StopReason::Deadline);
                let _ = events.send(Event::Stopping { reason: StopReason::Deadline });
            }
        }
    }

    // Everything that never ran: skipped when something it requires failed, otherwise not started.
    let order = graph.topo_order().unwrap_or_else(|_| graph.steps().map(|s| s.id).collect());
    let leftover_reason = stop.unwrap_or(StopReason::Cycle);
    for &id in &order {
        if outcomes.contains_key(&id) {
            continue;
        }
        let outcome = match failed_root(&graph, &outcomes, id) {
            Some(root) => Outcome::Skipped { because: root, because_label: info(root).label() },
            None => Outcome::NotStarted { reason: leftover_reason },
        };
        let _ = events.send(Event::Finished { step: info(id), outcome: outcome.clone(), elapsed: Duration::ZERO });
        outcomes.insert(id, (outcome, Duration::ZERO));
    }
    let _ = events.send(Event::End);

    let stopped = stop.or_else(|| {
        outcomes
            .values()
            .any(|(o, _)| matches!(o, Outcome::NotStarted { reason: StopReason::Cycle }))
            .then_some(StopReason::Cycle)
    });
    let steps = order
        .iter()
        .filter_map(|id| {
            let (outcome, elapsed) = outcomes.remove(id)?;
            let step = graph.step(*id)?;
            Some(StepReport {
                step: StepInfo::of(step),
                outcome,
                elapsed_ms: elapsed,
                effect: step.effect,
                task_op: TaskOp::of(&step.kind),
                task_sources: TaskOp::sources_of(&step.kind),
            })
        })
        .collect();
    ApplyReport { steps, stopped }
}

fn unknown_step(id: StepId) -> StepInfo {
    StepInfo { id, resource: "?".into(), action: "?".into(), note: None }
}

/// The failed step behind a `Requires` dependency of `id` that did not succeed, if any.
fn failed_root(graph: &StepGraph, outcomes: &BTreeMap<StepId, (Outcome, Duration)>, id: StepId) -> Option<StepId> {
    graph.requires_of(id).find_map(|dep| match outcomes.get(&dep) {
        Some((Outcome::Failed { .. }, _)) => Some(dep),
        Some((Outcome::Skipped { because, .. }, _)) => Some(*because),
        _ => None,
    })
}

fn release(
    id: StepId,
    countdown: &mut Countdown,
    ready: &mut BTreeSet<StepId>,
    ready_waits: &mut BTreeSet<StepId>,
    is_wait: &impl Fn(StepId) -> bool,
) {
    countdown.finish(id, |d| {
        ready.insert(d);
        if is_wait(d) {
            ready_waits.insert(d);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::graph::{DepKind, Effect, StepKind};
    use super::*;

    fn graph(n: usize) -> (StepGraph, Vec<StepId>) {
        let mut g = StepGraph::new();
        let ids = (0..n)
            .map(|i| {
                g.add(format!("task.t{i}"), StepKind::StopTask { name: format!("t{i}"), sources: None }, Effect::Change)
            })
            .collect();
        (g, ids)
    }

    /// Runs the graph; steps listed in `fail` fail. Returns the report and the order steps started in.
    async fn run(g: StepGraph, par: usize, fail_fast: bool, fail: &[StepId]) -> (ApplyReport, Vec<StepId>) {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let started = Arc::new(Mutex::new(vec![]));
        let fail: BTreeSet<StepId> = fail.iter().copied().collect();
        let s2 = started.clone();
        let report = run_graph(Arc::new(g), par, fail_fast, &Cancel::new(), None, &tx, move |id| {
            s2.lock().unwrap().push(id);
            let fails = fail.contains(&id);
            async move {
                tokio::task::yield_now().await;
                if fails { Err(Failure::new("boom")) } else { Ok(None) }
            }
        })
        .await;
        let order = started.lock().unwrap().clone();
        (report, order)
    }

    fn outcome(r: &ApplyReport, id: StepId) -> &Outcome {
        &r.steps.iter().find(|s| s.step.id == id).unwrap().outcome
    }

    #[tokio::test]
    async fn runs_in_dependency_order() {
        let (mut g, ids) = graph(4);
        g.depend(ids[0], ids[3], DepKind::Requires);
        g.depend(ids[1], ids[0], DepKind::Requires);
        g.depend(ids[2], ids[1], DepKind::After);
        let (r, order) = run(g, 1, false, &[]).await;
        assert_eq!(order, vec![ids[3], ids[0], ids[1], ids[2]]);
        assert!(r.success());
        assert_eq!(r.steps.iter().map(|s| s.step.id).collect::<Vec<_>>(), order);
    }

    #[tokio::test]
    async fn failure_skips_dependents_but_not_independent_branches() {
        let (mut g, ids) = graph(5);
        g.depend(ids[1], ids[0], DepKind::Requires);
        g.depend(ids[2], ids[1], DepKind::Requires);
        g.depend(ids[3], ids[0], DepKind::After);
        let (r, _) = run(g, 2, false, &[ids[0]]).await;
        assert!(matches!(outcome(&r, ids[0]), Outcome::Failed { .. }));
        assert!(matches!(outcome(&r, ids[1]), Outcome::Skipped { because, .. } if *because == ids[0]));
        // Transitive skip names the root failure.
        assert!(matches!(outcome(&r, ids[2]), Outcome::Skipped { because, .. } if *because == ids[0]));
        // An ordering-only dependency still runs.
        assert!(outcome(&r, ids[3]).is_done());
        assert!(outcome(&r, ids[4]).is_done());
        assert!(r.summary_line().starts_with("Apply failed: 1 of 5 steps failed, 2 skipped"));
    }

    /// A group dependency (`after_all`) orders like its edges: the waiters start once every member finished, and
    /// a failed member does not skip them (ordering only).
    #[tokio::test]
    async fn group_waiters_start_after_every_member_even_a_failed_one() {
        let (mut g, ids) = graph(5);
        g.depend(ids[1], ids[4], DepKind::Requires);
        g.after_all([ids[0], ids[2]], [ids[1], ids[3], ids[4]]);
        let (r, order) = run(g, 1, false, &[ids[3]]).await;
        assert_eq!(order, vec![ids[3], ids[4], ids[1], ids[0], ids[2]]);
        assert!(matches!(outcome(&r, ids[3]), Outcome::Failed { .. }));
        assert!(outcome(&r, ids[0]).is_done());
        assert!(outcome(&r, ids[2]).is_done());
    }

    #[tokio::test]
    async fn fail_fast_stops_scheduling() {
        let (mut g, ids) = graph(3);
        g.depend(ids[1], ids[0], DepKind::After);
        g.depend(ids[2], ids[1], DepKind::After);
        let (r, order) = run(g, 1, true, &[ids[0]]).await;
        assert_eq!(order, vec![ids[0]]);
        assert!(matches!(outcome(&r, ids[1]), Outcome::NotStarted { reason: StopReason::FailFast }));
        assert!(matches!(outcome(&r, ids[2]), Outcome::NotStarted { reason: StopReason::FailFast }));
        assert_eq!(r.stopped, Some(StopReason::FailFast));
    }

    #[tokio::test]
    async fn parallelism_is_bounded() {
        let (g, _) = graph(20);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let (n2, m2) = (now.clone(), max.clone());
        let r = run_graph(Arc::new(g), 3, false, &Cancel::new(), None, &tx, move |_| {
            let (n, m) = (n2.clone(), m2.clone());
            async move {
                let c = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(c, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok(None)
            }
        })
        .await;
        assert!(r.success());
        let m = max.load(Ordering::SeqCst);
        assert!((2..=3).contains(&m), "max in flight {m}");
    }

    #[tokio::test]
    async fn waits_run_beside_the_parallelism_slots() {
        use super::super::graph::WaitFor;
        let mut g = StepGraph::new();
        let busy = g.add("task.a", StepKind::StopTask { name: "a".into(), sources: None }, Effect::Change);
        let waits: Vec<StepId> = (0..3)
            .map(|i| {
                let kind = StepKind::WaitTask { name: format!("w{i}"), until: WaitFor::Running, sources: None };
                g.add(format!("task.w{i}"), kind, Effect::Change)
            })
            .collect();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let started = Arc::new(AtomicUsize::new(0));
        let all_waits = Arc::new(tokio::sync::Notify::new());
        let (s2, n2, waits2) = (started.clone(), all_waits.clone(), waits.clone());
        // One slot, taken by a step that finishes only once every wait has started: the waits must not need it.
        let r = run_graph(Arc::new(g), 1, false, &Cancel::new(), None, &tx, move |id| {
            let (s, n, is_wait) = (s2.clone(), n2.clone(), waits2.contains(&id));
            async move {
                if is_wait {
                    if s.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                        n.notify_one();
                    }
                    return Ok(None);
                }
                match tokio::time::timeout(Duration::from_secs(10), n.notified()).await {
                    Ok(()) => Ok(None),
                    Err(_) => Err(Failure::new("the waits never started beside the busy step")),
                }
            }
        })
        .await;
        assert!(outcome(&r, busy).is_done(), "{:?}", outcome(&r, busy));
        assert!(waits.iter().all(|w| outcome(&r, *w).is_done()));
    }

    #[tokio::test]
    async fn cancel_lets_in_flight_steps_finish_and_reports_the_rest() {
        let (mut g, ids) = graph(3);
        g.depend(ids[1], ids[0], DepKind::Requires);
        g.depend(ids[2], ids[1], DepKind::Requires);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Cancel::new();
        let c2 = cancel.clone();
        let r = run_graph(Arc::new(g), 4, false, &cancel, None, &tx, move |_| {
            let c = c2.clone();
            async move {
                c.cancel();
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(Some("finished anyway".into()))
            }
        })
        .await;
        assert_eq!(*outcome(&r, ids[0]), Outcome::Done { note: Some("finished anyway".into()) });
        assert!(matches!(outcome(&r, ids[1]), Outcome::NotStarted { reason: StopReason::Interrupted }));
        assert!(matches!(outcome(&r, ids[2]), Outcome::NotStarted { reason: StopReason::Interrupted }));
        assert!(r.summary_line().starts_with("Apply interrupted"));
        drop(tx);
        let mut events = vec![];
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        assert!(events.contains(&Event::Stopping { reason: StopReason::Interrupted }));
        assert_eq!(events.last(), Some(&Event::End));
    }

    #[tokio::test]
    async fn cycle_does_not_hang() {
        let (mut g, ids) = graph(3);
        g.depend(ids[0], ids[1], DepKind::Requires);
        g.depend(ids[1], ids[0], DepKind::Requires);
        let (r, order) = run(g, 2, false, &[]).await;
        assert_eq!(order, vec![ids[2]]);
        assert!(matches!(outcome(&r, ids[0]), Outcome::NotStarted { reason: StopReason::Cycle }));
        assert_eq!(r.stopped, Some(StopReason::Cycle));
        assert!(!r.success());
    }

    #[tokio::test]
    async fn a_panicking_step_is_a_failure() {
        let (g, ids) = graph(1);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let r = run_graph(Arc::new(g), 1, false, &Cancel::new(), None, &tx, |_| async {
            if true {
                panic!("bug");
            }
            Ok(None)
        })
        .await;
        assert!(matches!(outcome(&r, ids[0]), Outcome::Failed { failure } if failure.message.contains("crashed")));
    }
}
