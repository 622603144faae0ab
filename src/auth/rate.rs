//! Per-client rate limits (contract §8): a token bucket per client (GCRA, `governor`), N
//! requests a second with bursts of 2N, per replica; some clients may have their own N.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct RateLimits {
    default: DefaultKeyedRateLimiter<String>,
    /// Clients with a limit of their own.
    own: HashMap<String, DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

fn limiter(per_second: NonZeroU32) -> DefaultKeyedRateLimiter<String> {
    let burst = per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1));
    RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
}

impl RateLimits {
    /// `per_client` for every client; `overrides` as `CLIENT=N`.
    pub fn new(per_client: NonZeroU32, overrides: &[String]) -> Result<Self, String> {
        let mut own = HashMap::new();
        for o in overrides {
            let (client, n) = o
                .rsplit_once('=')
                .ok_or_else(|| format!("--rate-limit-client {o}: expected CLIENT=N"))?;
            let n: NonZeroU32 = n.parse().map_err(|_| {
                format!("--rate-limit-client {o}: N must be a whole number above 0")
            })?;
            own.insert(client.to_string(), limiter(n));
        }
        Ok(Self {
            default: limiter(per_client),
            own,
            checks: AtomicU64::new(0),
        })
    }

    /// Takes one request from `client`'s bucket; when it is empty, how long until it is not.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        // Buckets of clients gone quiet are dropped now and then: the map stays bounded by the
        // clients of the last few seconds.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.default.retain_recent();
            self.default.shrink_to_fit();
        }
        let limiter = self.own.get(client).unwrap_or(&self.default);
        limiter
            .check_key(&client.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_of_twice_the_rate_then_refused() {
        let limits =
            RateLimits::new(NonZeroU32::new(2).expect("2"), &["big=100".into()]).expect("ok");
        for _ in 0..4 {
            assert!(limits.check("a").is_ok());
        }
        let wait = limits.check("a").expect_err("fifth in a burst of 4");
        assert!(wait <= Duration::from_secs(1));
        assert!(
            limits.check("b").is_ok(),
            "another client has its own bucket"
        );
        for _ in 0..200 {
            assert!(limits.check("big").is_ok());
        }
        assert!(RateLimits::new(NonZeroU32::MIN, &["x".into()]).is_err());
    }
}
