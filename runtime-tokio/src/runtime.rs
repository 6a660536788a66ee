//! The core's runtime trait on tokio.

use std::time::{Instant, SystemTime};

use moat_mqtt_core::driver::{BoxFuture, Runtime};

/// Clock, timers and tasks from the tokio runtime the caller runs in.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn unix_time(&self) -> u64 {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn spawn(&self, future: BoxFuture) {
        drop(tokio::spawn(future));
    }
}
