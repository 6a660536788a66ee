//! What the driver needs from an async runtime.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::poller::PollerSource;

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

    /// Watches a socket poller of the broker's (a file descriptor, readable when sockets are
    /// ready) with the runtime's reactor. Called from a task of the runtime.
    ///
    /// # Errors
    /// The reactor refused to watch it.
    fn watch(&self, poller: PollerSource) -> io::Result<Box<dyn WatchedPoller>>;
}

/// A [`PollerSource`] watched by the runtime's reactor ([`Runtime::watch`]).
pub trait WatchedPoller: Send {
    /// Once the poller is readable, calls [`PollerSource::dispatch`] and returns what it
    /// returned (`true`: more events may wait); `Pending` (the task is woken when it becomes
    /// readable) otherwise. Readiness is re-armed by the next call after a dispatch that
    /// returned `false`.
    fn poll_dispatch(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>>;
}
