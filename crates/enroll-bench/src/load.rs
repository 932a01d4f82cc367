//! A closed-loop load generator: N workers, each on its own thread with
//! its own keep-alive connection, repeat one step (an HTTP call, or a whole
//! flow of them) as fast as the server answers. Latencies are recorded per
//! step after a warm-up; errors are counted, and the first is kept, so a
//! benchmark never reports throughput made of failures.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub completed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Sorted step latencies of the measured window.
    latencies: Vec<Duration>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency below which `q` (0..1) of the steps completed.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64) * q).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies.get(i).copied().unwrap_or_default()
    }

    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// Fails when anything failed: a rate made of errors is no rate.
    pub fn require_clean(&self, what: &str) -> Result<()> {
        if self.errors > 0 {
            bail!(
                "{what}: {} of {} steps failed; first: {}",
                self.errors,
                self.errors + self.completed,
                self.first_error.as_deref().unwrap_or("?")
            );
        }
        if self.completed == 0 {
            bail!("{what}: nothing completed");
        }
        Ok(())
    }
}

/// Milliseconds with two decimals, for tables.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One worker's latencies, error count and first error.
type WorkerResult = (Vec<Duration>, u64, Option<String>);

/// Runs `step` on `workers` threads for `warmup` + `measure`. Each worker
/// first builds its state with `setup(worker_index)` (its connection, its
/// request bodies); setup time is not measured.
pub fn run<W, S, F>(
    workers: usize,
    warmup: Duration,
    measure: Duration,
    setup: S,
    step: F,
) -> Result<Outcome>
where
    S: Fn(usize) -> Result<W> + Sync,
    F: Fn(&mut W) -> Result<()> + Sync,
{
    let stop = AtomicBool::new(false);
    let started = std::sync::Barrier::new(workers + 1);
    let results: Mutex<Vec<WorkerResult>> = Mutex::new(Vec::new());
    let setup_failed: Mutex<Option<String>> = Mutex::new(None);
    let window_start = std::sync::OnceLock::new();
    let mut window = (Instant::now(), Instant::now());
    std::thread::scope(|s| {
        for w in 0..workers {
            let (stop, started, results, setup_failed) = (&stop, &started, &results, &setup_failed);
            let window_start = &window_start;
            let (setup, step) = (&setup, &step);
            s.spawn(move || {
                let state = setup(w);
                started.wait();
                let mut state = match state {
                    Ok(st) => st,
                    Err(e) => {
                        if let Ok(mut f) = setup_failed.lock() {
                            f.get_or_insert(format!("{e:#}"));
                        }
                        return;
                    }
                };
                let mut lat = Vec::with_capacity(4096);
                let (mut errors, mut first) = (0u64, None);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = step(&mut state);
                    let took = t.elapsed();
                    match r {
                        Ok(()) => lat.push((t, took)),
                        Err(e) => {
                            errors += 1;
                            first.get_or_insert(format!("{e:#}"));
                        }
                    }
                }
                // Only steps that started inside the measured window count.
                let from = window_start.get().copied().unwrap_or_else(Instant::now);
                let lat: Vec<Duration> = lat
                    .into_iter()
                    .filter(|(t, _)| *t >= from)
                    .map(|(_, d)| d)
                    .collect();
                if let Ok(mut r) = results.lock() {
                    r.push((lat, errors, first));
                }
            });
        }
        started.wait();
        std::thread::sleep(warmup);
        let from = Instant::now();
        let _ = window_start.set(from);
        std::thread::sleep(measure);
        stop.store(true, Ordering::Relaxed);
        window = (from, Instant::now());
    });
    if let Some(e) = setup_failed.into_inner().ok().flatten() {
        bail!("a worker could not start: {e}");
    }
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for (l, e, f) in results.into_inner().unwrap_or_default() {
        latencies.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    latencies.sort_unstable();
    Ok(Outcome {
        completed: latencies.len() as u64,
        errors,
        first_error,
        elapsed: window.1 - window.0,
        latencies,
    })
}
