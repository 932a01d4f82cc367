//! Time as a parameter: domain code asks a [`Clock`], tests pass a fixed one.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, UTC. Stored as-is in both databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    pub fn plus_days(self, days: u32) -> UnixTime {
        UnixTime(self.0.saturating_add(i64::from(days) * 86_400))
    }
}

/// The source of "now" for use cases.
pub trait Clock: Send + Sync {
    fn now(&self) -> UnixTime;
}

/// A clock that always says the same time, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub UnixTime);

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        self.0
    }
}
