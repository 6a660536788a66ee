//! `--threads N`: the bench on N single-threaded runtimes ("shards"), one per thread, instead
//! of one work-stealing pool.
//!
//! Why: a load tool must cost little per connection, since it shares the machine with the
//! broker it measures. On a work-stealing pool, every connection's wake-ups may cross threads.
//! Here a shard keeps what it starts: the tasks that open connections are spread over the
//! shards in turn ([`Runtime::spawn`]), and each connection is driven on the shard that dialed
//! it ([`BenchRuntime::spawn_here`]), so its socket, timers and task share one thread. (Two
//! tool processes of 5,000 connections each opened connections to moat 20 % faster than one
//! tool of 10,000 on a 2-core machine; a 2-thread tokio pool was slower than one thread.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use moat_mqtt_core::driver::{BoxFuture, Runtime};

/// The bench's runtimes: a [`Runtime`] that can also start a task on the calling thread's shard.
pub(crate) trait BenchRuntime: Runtime + Unpin {
    /// Runs `future` on the shard of the thread that calls (where the connection it drives
    /// was dialed).
    fn spawn_here(&self, future: BoxFuture);
}

/// Picks the shards in turn.
#[derive(Debug, Default)]
struct RoundRobin(AtomicUsize);

impl RoundRobin {
    fn next(&self, shards: usize) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed) % shards
    }
}

/// Starts `threads - 1` helper threads, each serving one shard made by `make` and handing back
/// what `make` returns to reach it, until `finished` tells them to stop; runs `main` on this
/// thread (shard 0, `first`) meanwhile.
fn with_helpers<H: Send + 'static, T>(
    threads: usize,
    first: H,
    make: impl Fn(usize, std::sync::mpsc::Sender<H>, futures::channel::oneshot::Receiver<()>) + Send + Sync + 'static,
    main: impl FnOnce(Arc<[H]>) -> T,
) -> T {
    let make = Arc::new(make);
    let mut handles = vec![first];
    let mut helpers = Vec::new();
    let mut stops = Vec::new();
    for n in 1..threads {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = futures::channel::oneshot::channel();
        let make = Arc::clone(&make);
        let spawned =
            std::thread::Builder::new().name(format!("moat-bench-{n}")).spawn(move || make(n, handle_tx, stop_rx));
        match spawned.map_err(|e| e.to_string()).and_then(|thread| match handle_rx.recv() {
            Ok(handle) => Ok((thread, handle)),
            Err(_) => Err("it ended at once".to_owned()),
        }) {
            Ok((thread, handle)) => {
                handles.push(handle);
                helpers.push(thread);
                stops.push(stop_tx);
            }
            Err(e) => log::warn!("cannot start bench thread {n}: {e}; running on {n}"),
        }
    }
    let output = main(handles.into());
    // Dropping the senders ends the helpers.
    drop(stops);
    for helper in helpers {
        let _ = helper.join();
    }
    output
}

#[cfg(feature = "runtime-tokio")]
pub(crate) use tokio_shards::TokioShards;

#[cfg(feature = "runtime-tokio")]
mod tokio_shards {
    use std::io;
    use std::sync::Arc;
    use std::time::Instant;

    use moat_mqtt_core::driver::{BoxFuture, PollerSource, Runtime, WatchedPoller};
    use moat_mqtt_tokio::TokioRuntime;
    use tokio::runtime::Handle;

    use super::{BenchRuntime, RoundRobin, with_helpers};

    /// Tokio current-thread runtimes, one per thread.
    #[derive(Debug, Clone)]
    pub(crate) struct TokioShards {
        handles: Arc<[Handle]>,
        next: Arc<RoundRobin>,
    }

    fn current_thread() -> io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }

    impl TokioShards {
        /// Runs `main` on `threads` shards (this thread's first) until it completes.
        ///
        /// # Errors
        /// This thread's runtime could not be built. (A helper that cannot start is logged,
        /// and the bench runs on fewer threads.)
        pub(crate) fn run<T, F: Future<Output = T>>(threads: usize, main: impl FnOnce(Self) -> F) -> io::Result<T> {
            let runtime = current_thread()?;
            let make = |n, handle_tx: std::sync::mpsc::Sender<Handle>, stop| match current_thread() {
                Ok(runtime) => {
                    let _ = handle_tx.send(runtime.handle().clone());
                    let _ = runtime.block_on(stop);
                }
                Err(e) => log::warn!("bench thread {n}: cannot build its tokio runtime: {e}"),
            };
            Ok(with_helpers(threads, runtime.handle().clone(), make, |handles| {
                runtime.block_on(main(Self { handles, next: Arc::default() }))
            }))
        }
    }

    impl Runtime for TokioShards {
        fn now(&self) -> Instant {
            TokioRuntime.now()
        }

        fn unix_time(&self) -> u64 {
            TokioRuntime.unix_time()
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture {
            TokioRuntime.sleep_until(deadline)
        }

        fn spawn(&self, future: BoxFuture) {
            drop(self.handles[self.next.next(self.handles.len())].spawn(future));
        }

        fn watch(&self, poller: PollerSource) -> io::Result<Box<dyn WatchedPoller>> {
            TokioRuntime.watch(poller)
        }
    }

    impl BenchRuntime for TokioShards {
        fn spawn_here(&self, future: BoxFuture) {
            // Called from a task: the current runtime is that task's shard.
            drop(tokio::spawn(future));
        }
    }
}

#[cfg(feature = "runtime-smol")]
pub(crate) use smol_shards::SmolShards;

#[cfg(feature = "runtime-smol")]
mod smol_shards {
    use std::cell::RefCell;
    use std::sync::Arc;
    use std::time::Instant;

    use moat_mqtt_core::driver::{BoxFuture, PollerSource, Runtime, WatchedPoller};
    use moat_mqtt_smol::SmolRuntime;
    use smol::Executor;

    use super::{BenchRuntime, RoundRobin, with_helpers};

    thread_local! {
        /// The executor this thread serves.
        static HERE: RefCell<Option<Arc<Executor<'static>>>> = const { RefCell::new(None) };
    }

    /// smol executors, one per thread (the smol runtime crate's executor is shared by one
    /// thread per core).
    #[derive(Debug, Clone)]
    pub(crate) struct SmolShards {
        executors: Arc<[Arc<Executor<'static>>]>,
        next: Arc<RoundRobin>,
    }

    /// Serves `executor` on this thread until `until` completes.
    fn serve<T>(executor: &Arc<Executor<'static>>, until: impl Future<Output = T>) -> T {
        HERE.with_borrow_mut(|here| *here = Some(Arc::clone(executor)));
        smol::block_on(executor.run(until))
    }

    impl SmolShards {
        /// Runs `main` on `threads` shards (this thread's first) until it completes.
        pub(crate) fn run<T, F: Future<Output = T>>(threads: usize, main: impl FnOnce(Self) -> F) -> T {
            let make = |_, handle_tx: std::sync::mpsc::Sender<Arc<Executor<'static>>>, stop| {
                let executor = Arc::new(Executor::new());
                let _ = handle_tx.send(Arc::clone(&executor));
                let _ = serve(&executor, stop);
            };
            with_helpers(threads, Arc::new(Executor::new()), make, |executors| {
                let first = Arc::clone(&executors[0]);
                serve(&first, main(Self { executors, next: Arc::default() }))
            })
        }
    }

    impl Runtime for SmolShards {
        fn now(&self) -> Instant {
            SmolRuntime.now()
        }

        fn unix_time(&self) -> u64 {
            SmolRuntime.unix_time()
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture {
            SmolRuntime.sleep_until(deadline)
        }

        fn spawn(&self, future: BoxFuture) {
            self.executors[self.next.next(self.executors.len())].spawn(future).detach();
        }

        fn watch(&self, poller: PollerSource) -> std::io::Result<Box<dyn WatchedPoller>> {
            SmolRuntime.watch(poller)
        }
    }

    impl BenchRuntime for SmolShards {
        fn spawn_here(&self, future: BoxFuture) {
            match HERE.with_borrow(Clone::clone) {
                Some(executor) => executor.spawn(future).detach(),
                None => self.spawn(future),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_take_turns() {
        let turns = RoundRobin::default();
        let picked: Vec<usize> = (0..5).map(|_| turns.next(2)).collect();
        assert_eq!(picked, [0, 1, 0, 1, 0]);
    }

    /// Each shard is a thread of its own; `spawn` spreads tasks over them and `spawn_here`
    /// keeps a task on the thread that starts it.
    async fn spreads_and_keeps<R: BenchRuntime>(runtime: R) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        for _ in 0..4 {
            let (runtime, tx) = (runtime.clone(), tx.clone());
            runtime.clone().spawn(Box::pin(async move {
                let spawner = std::thread::current().id();
                let (here_tx, here_rx) = futures::channel::oneshot::channel();
                runtime.spawn_here(Box::pin(async move {
                    let _ = here_tx.send(std::thread::current().id());
                }));
                let _ = tx.unbounded_send((spawner, here_rx.await.ok()));
            }));
        }
        drop(tx);
        let seen: Vec<_> = futures::StreamExt::collect(rx).await;
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|(spawner, here)| Some(*spawner) == *here), "spawn_here moved: {seen:?}");
        let threads: std::collections::HashSet<_> = seen.iter().map(|(spawner, _)| *spawner).collect();
        assert_eq!(threads.len(), 2, "tasks not spread over both shards: {seen:?}");
    }

    #[cfg(feature = "runtime-tokio")]
    #[test]
    fn tokio_shards_spread_tasks_and_keep_connections_where_dialed() {
        TokioShards::run(2, spreads_and_keeps).unwrap();
    }

    #[cfg(feature = "runtime-smol")]
    #[test]
    fn smol_shards_spread_tasks_and_keep_connections_where_dialed() {
        SmolShards::run(2, spreads_and_keeps);
    }
}
