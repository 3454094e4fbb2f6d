//! The simulated latency, as precise as the OS timer and without a thread per request.
//!
//! tokio's timer works in whole milliseconds and rounds every deadline up, so `tokio::time::sleep(5 ms)` answered
//! after ~6.3 ms, and the fleet benchmark measured the client against a latency 26% above the one it divides by.
//! A thread sleeping with the kernel's high-resolution timer is precise, but one blocking-pool thread per request
//! cost two extra context switches per request, the largest part of the simulator's CPU in a fleet apply. So one
//! thread keeps every pending deadline in a heap, sleeps until the earliest and wakes all that are due at once;
//! with a constant latency, a new deadline is never the earliest and adding it wakes nobody.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Latencies up to this are slept on the timer thread; longer ones (tests widening a window) on tokio's timer,
/// where the rounding does not matter and a paused test clock still applies.
const PRECISE_UP_TO: Duration = Duration::from_millis(100);

struct Due {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Pending {
    heap: BinaryHeap<Reverse<Due>>,
    seq: u64,
}

struct Timer {
    pending: Mutex<Pending>,
    earlier: Condvar,
}

impl Timer {
    /// The process's timer thread, started on first use. It lives as long as the process and sleeps when idle.
    fn get() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let t: &'static Timer =
                Box::leak(Box::new(Timer { pending: Mutex::new(Pending::default()), earlier: Condvar::new() }));
            std::thread::Builder::new().name("sim-clock".into()).spawn(move || t.run()).ok().map(|_| t)
        })
    }

    fn add(&self, at: Instant) -> oneshot::Receiver<()> {
        let (wake, rx) = oneshot::channel();
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.seq += 1;
        let seq = p.seq;
        let earliest = p.heap.peek().is_none_or(|Reverse(d)| at < d.at);
        p.heap.push(Reverse(Due { at, seq, wake }));
        drop(p);
        if earliest {
            self.earlier.notify_one();
        }
        rx
    }

    fn run(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while p.heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
                if let Some(Reverse(d)) = p.heap.pop() {
                    let _ = d.wake.send(());
                }
            }
            p = match p.heap.peek() {
                None => self.earlier.wait(p).unwrap_or_else(|e| e.into_inner()),
                Some(Reverse(d)) => {
                    let left = d.at.saturating_duration_since(now);
                    self.earlier.wait_timeout(p, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

/// Wait `d` (see the module docs).
pub(crate) async fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    let at = Instant::now() + d;
    match Timer::get() {
        Some(t) if d <= PRECISE_UP_TO => {
            if t.add(at).await.is_err() {
                tokio::time::sleep_until(at.into()).await;
            }
        }
        _ => tokio::time::sleep(d).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_sleep_lasts_at_least_its_duration_and_not_much_more() {
        let sleeps: Vec<_> = (0..50u64)
            .map(|i| {
                tokio::spawn(async move {
                    let d = Duration::from_micros(500 + (i * 397) % 5000);
                    let t = Instant::now();
                    sleep(d).await;
                    (d, t.elapsed())
                })
            })
            .collect();
        for s in sleeps {
            let (d, took) = s.await.unwrap();
            assert!(took >= d, "{d:?} took {took:?}");
            // Generous: a loaded CI machine may delay the wake, but not by a whole second.
            assert!(took < d + Duration::from_secs(1), "{d:?} took {took:?}");
        }
    }
}
