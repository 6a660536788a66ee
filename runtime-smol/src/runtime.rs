//! The core's runtime trait on smol.

use std::io;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use moat_mqtt_core::driver::{BoxFuture, PollerSource, Runtime, WatchedPoller};
use smol::{Async, Executor};

/// Clock, timers and tasks on smol.
///
/// Tasks run on one process-wide executor served by as many threads as the machine has cores
/// (or `SMOL_THREADS`, if set), started on first use, so that links are decoded and encoded in
/// parallel whoever calls `block_on`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

fn executor() -> &'static Arc<Executor<'static>> {
    static EXECUTOR: OnceLock<Arc<Executor<'static>>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let executor = Arc::new(Executor::new());
        let threads = std::env::var("SMOL_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .or_else(|| std::thread::available_parallelism().ok().map(NonZeroUsize::get))
            .unwrap_or(1)
            .max(1);
        for n in 0..threads {
            let executor = Arc::clone(&executor);
            let spawned = std::thread::Builder::new()
                .name(format!("moat-smol-{n}"))
                .spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())));
            if let Err(e) = spawned {
                log::error!("cannot start executor thread {n}: {e}");
            }
        }
        executor
    })
}

impl SmolRuntime {
    /// Runs `future` on the runtime's executor and returns its task (detach it to let it run
    /// on its own, drop it to cancel).
    pub fn spawn_task<T: Send + 'static>(
        &self,
        future: impl std::future::Future<Output = T> + Send + 'static,
    ) -> smol::Task<T> {
        executor().spawn(future)
    }
}

impl Runtime for SmolRuntime {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_time(&self) -> u64 {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let timer = smol::Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }

    fn spawn(&self, future: BoxFuture) {
        self.spawn_task(future).detach();
    }

    fn watch(&self, poller: PollerSource) -> io::Result<Box<dyn WatchedPoller>> {
        Ok(Box::new(SmolPoller(Async::new(poller)?)))
    }
}

/// A link group's socket poller, watched by async-io's reactor.
struct SmolPoller(Async<PollerSource>);

impl WatchedPoller for SmolPoller {
    fn poll_dispatch(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        ready!(self.0.poll_readable(cx))?;
        Poll::Ready(Ok(self.0.get_ref().dispatch()))
    }
}
