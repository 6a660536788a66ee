//! What the driver needs from an async runtime.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// A boxed future that can move between threads.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The clock, timer and task spawner of an async runtime.
///
/// The core never reads a clock: the driver asks the runtime, so tests may run on a runtime
/// with a paused or simulated clock.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The current monotonic time.
    fn now(&self) -> Instant;

    /// Seconds since 1970-01-01 UTC, for `$SYS/broker/time`.
    fn unix_time(&self) -> u64;

    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture;

    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture);
}
