//! Token buckets: the per-client rate limit, and the count of refusals that means abuse.

use std::time::{Duration, Instant};

/// A token bucket: holds at most `capacity` tokens and gains `rate` tokens per second; each
/// event takes one token, and an event finding the bucket empty is over the limit.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tolqin_chat::rate::TokenBucket;
/// let start = Instant::now();
/// let mut bucket = TokenBucket::new(2.0, 1.0, start);
/// assert!(bucket.try_take(start));
/// assert!(bucket.try_take(start));
/// assert!(!bucket.try_take(start)); // the burst is spent
/// assert!(bucket.try_take(start + Duration::from_secs(1))); // one token a second
/// ```
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens (at least 1) refilled at `rate` tokens per second.
    pub fn new(capacity: f64, rate: f64, now: Instant) -> Self {
        let capacity = capacity.max(1.0);
        TokenBucket {
            capacity,
            rate: rate.max(0.0),
            tokens: capacity,
            last: now,
        }
    }

    /// Takes a token if there is one; `false` when the bucket is empty.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long from `now` until [`TokenBucket::try_take`] succeeds (zero when it would now;
    /// [`Duration::MAX`] for a bucket that never refills).
    pub fn wait(&self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if tokens >= 1.0 {
            Duration::ZERO
        } else if self.rate > 0.0 {
            Duration::from_secs_f64((1.0 - tokens) / self.rate)
        } else {
            Duration::MAX
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_up_to_the_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3.0, 10.0, t0);
        assert_eq!((0..5).filter(|_| b.try_take(t0)).count(), 3);
        // 100 ms at 10/s: one more token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.try_take(t1));
        assert!(!b.try_take(t1));
        // A long idle time refills to the capacity, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.try_take(t2)).count(), 3);
        // Empty: the next token comes in 1/rate.
        let close_to = |d: Duration, ms: f64| (d.as_secs_f64() * 1000.0 - ms).abs() < 1e-6;
        assert!(close_to(b.wait(t2), 100.0));
        assert!(close_to(b.wait(t2 + Duration::from_millis(40)), 60.0));
        assert_eq!(b.wait(t2 + Duration::from_millis(100)), Duration::ZERO);
        assert_eq!(TokenBucket::new(1.0, 0.0, t0).wait(t0), Duration::ZERO);
    }
}
