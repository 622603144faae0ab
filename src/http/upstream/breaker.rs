//! The circuit breaker: after [`FAILURES_TO_OPEN`] consecutive failed upstream calls it opens
//! and every call fails fast (503) until the open period ends; then one call at a time is let
//! through as a probe, and its success closes the breaker again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker (contract §7).
pub const FAILURES_TO_OPEN: u32 = 5;

#[derive(Debug)]
pub struct Breaker {
    open_for: Duration,
    /// A probe that has not reported back within this long (its caller went away) no longer
    /// holds the half-open state: the next call probes instead.
    probe_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    probe_started: Option<Instant>,
    last_fault: Option<String>,
    opened_times: u64,
}

/// The breaker's state, for `/health` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// What [`Breaker::admit`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    Call,
    Probe,
}

impl Breaker {
    pub fn new(open_for: Duration, probe_timeout: Duration) -> Self {
        Self {
            open_for,
            probe_timeout,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the counters are still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may go to the upstream now; `Err(wait)` while the breaker is open.
    pub fn admit(&self) -> Result<Admitted, Duration> {
        let now = Instant::now();
        let mut s = self.lock();
        let Some(until) = s.open_until else {
            return Ok(Admitted::Call);
        };
        if now < until {
            return Err(until - now);
        }
        match s.probe_started {
            Some(started) if now.duration_since(started) < self.probe_timeout => {
                Err(Duration::from_secs(1))
            }
            _ => {
                s.probe_started = Some(now);
                Ok(Admitted::Probe)
            }
        }
    }

    pub fn succeeded(&self) {
        let mut s = self.lock();
        s.failures = 0;
        s.open_until = None;
        s.probe_started = None;
    }

    pub fn failed(&self, fault: &str) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        s.last_fault = Some(fault.to_string());
        let probing = s.probe_started.take().is_some();
        if probing || s.failures >= FAILURES_TO_OPEN {
            if s.open_until.is_none() || probing {
                s.opened_times += 1;
            }
            s.open_until = Some(Instant::now() + self.open_for);
        }
    }

    pub fn state(&self) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed,
            Some(until) if Instant::now() < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Consecutive failures, the last fault, and how often the breaker has opened.
    pub fn report(&self) -> (u32, Option<String>, u64) {
        let s = self.lock();
        (s.failures, s.last_fault.clone(), s.opened_times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_five_failures_and_probes_back() {
        let b = Breaker::new(Duration::from_millis(50), Duration::from_secs(5));
        for _ in 0..FAILURES_TO_OPEN - 1 {
            assert_eq!(b.admit(), Ok(Admitted::Call));
            b.failed("refused");
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.failed("refused");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(), Ok(Admitted::Probe));
        // One probe at a time.
        assert!(b.admit().is_err());
        b.failed("refused");
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.admit(), Ok(Admitted::Probe));
        b.succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(), Ok(Admitted::Call));
        assert_eq!(b.report().2, 2);
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(Duration::from_secs(30), Duration::from_secs(5));
        for _ in 0..10 {
            b.failed("5xx");
            b.failed("5xx");
            b.succeeded();
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_probe_does_not_hold_the_breaker() {
        let b = Breaker::new(Duration::from_millis(10), Duration::from_millis(30));
        for _ in 0..FAILURES_TO_OPEN {
            b.failed("timeout");
        }
        std::thread::sleep(Duration::from_millis(15));
        assert_eq!(b.admit(), Ok(Admitted::Probe));
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(35));
        assert_eq!(b.admit(), Ok(Admitted::Probe));
    }
}
