//! Per-node clocks. A node never sees the simulator's true (virtual) time:
//! it reads its own clock, set off by a fixed offset and running at its own
//! rate, within `ClockConfig`'s bounds, as real machines' clocks are. Every
//! time a protocol is handed (`now`) and every deadline it asks for
//! (`next_timer`) is on its own clock; the simulator converts deadlines back
//! to true time to schedule them. Histories, traces and checks use true time.

use crate::config::ClockConfig;
use quorum_core::{Instant, Rng};

const MILLION: i128 = 1_000_000;

/// One node's clock: `local = offset + t + t * drift_ppm / 10^6` at true time `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    offset_ns: u64,
    drift_ppm: i64,
}

impl Clock {
    /// A clock drawn within the configured bounds.
    pub(crate) fn random(rng: &mut Rng, config: &ClockConfig) -> Self {
        let offset_ns = rng.range(0, config.max_offset.as_nanos() + 1);
        let max = config.max_drift_ppm.min(500_000);
        let drift_ppm = rng.range(0, 2 * max + 1) as i64 - max as i64;
        Clock { offset_ns, drift_ppm }
    }

    /// What the clock reads at true time `t` (never decreasing in `t`).
    pub(crate) fn local(&self, t: Instant) -> Instant {
        let t = i128::from(t.as_nanos());
        let local = i128::from(self.offset_ns) + t + t * i128::from(self.drift_ppm) / MILLION;
        Instant::from_nanos(local.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// The earliest true time at which the clock reads `local` or later.
    pub(crate) fn true_time(&self, local: Instant) -> Instant {
        let since_offset = i128::from(local.as_nanos()) - i128::from(self.offset_ns);
        if since_offset <= 0 {
            return Instant::ZERO;
        }
        let rate = MILLION + i128::from(self.drift_ppm);
        let mut t = ((since_offset * MILLION + rate - 1) / rate).max(0);
        // Integer rounding in `local` can leave the estimate a nanosecond or two short.
        while self.local(Instant::from_nanos(t as u64)) < local {
            t += 1;
        }
        while t > 0 && self.local(Instant::from_nanos(t as u64 - 1)) >= local {
            t -= 1;
        }
        Instant::from_nanos(t.min(i128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::Duration;

    #[test]
    fn a_deadline_read_on_a_node_clock_is_reached_at_the_true_time_it_converts_to() {
        let mut rng = Rng::new(3);
        let config = ClockConfig { max_offset: Duration::from_secs(2), max_drift_ppm: 50_000 };
        for _ in 0..200 {
            let clock = Clock::random(&mut rng, &config);
            for t in [0u64, 1, 999, 1_000_000, 123_456_789_012] {
                let local = clock.local(Instant::from_nanos(t));
                let back = clock.true_time(local);
                assert!(clock.local(back) >= local, "{clock:?}: the clock reads the deadline by then");
                assert!(back.as_nanos() <= t, "{clock:?}: and not later than the time it was read at");
                if back.as_nanos() > 0 {
                    assert!(clock.local(Instant::from_nanos(back.as_nanos() - 1)) < local, "the earliest such time");
                }
            }
        }
    }

    #[test]
    fn a_fast_clock_reads_more_time_passing_than_a_slow_one() {
        let fast = Clock { offset_ns: 0, drift_ppm: 10_000 };
        let slow = Clock { offset_ns: 5, drift_ppm: -10_000 };
        let t = Instant::from_nanos(1_000_000_000);
        assert_eq!(fast.local(t).as_nanos(), 1_010_000_000);
        assert_eq!(slow.local(t).as_nanos(), 990_000_005);
        assert_eq!(Clock { offset_ns: 0, drift_ppm: 0 }.local(t), t);
    }
}
