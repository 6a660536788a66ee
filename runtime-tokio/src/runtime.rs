//! The core's runtime trait on tokio.

use std::io;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use moat_mqtt_core::driver::{BoxFuture, PollerSource, Runtime, WatchedPoller};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

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

    fn watch(&self, poller: PollerSource) -> io::Result<Box<dyn WatchedPoller>> {
        // `with_interest` is deprecated because a bare `AsRawFd` may name a descriptor it
        // does not own; `PollerSource` owns its descriptor, which lives as long as the
        // `AsyncFd` holding it. (The replacement, `register_with_interest`, is an unsafe fn.)
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(poller, Interest::READABLE)?;
        Ok(Box::new(TokioPoller(fd)))
    }
}

/// A link group's socket poller, watched by tokio's reactor.
struct TokioPoller(AsyncFd<PollerSource>);

impl WatchedPoller for TokioPoller {
    fn poll_dispatch(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut ready = ready!(self.0.poll_read_ready(cx))?;
        let more = ready.get_inner().dispatch();
        if !more {
            ready.clear_ready();
        }
        Poll::Ready(Ok(more))
    }
}
