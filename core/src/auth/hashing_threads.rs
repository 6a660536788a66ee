//! A few threads of their own for checking passwords.
//!
//! A good password hash is slow on purpose: one argon2id check takes about 75 ms and 19 MiB
//! here. Run on an async runtime's worker, a burst of logins would stall every other client of
//! that worker for as long. Run on a runtime's blocking pool (up to 512 threads on tokio), the
//! same burst would hold 19 MiB per login at once. So checks wait in one queue for
//! [`THREADS`] threads at most, started on first use. Logins that wait too long are refused by
//! the driver's authentication timeout; every other client goes on.
//!
//! Without the `driver` feature the core starts no thread: checks run where they are polled.

#[cfg(feature = "driver")]
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
#[cfg(feature = "driver")]
use std::sync::{Condvar, OnceLock};
use std::task::{Context, Poll, Waker};

/// The most checks that run at once (fewer on a machine with fewer cores).
#[cfg(feature = "driver")]
pub(super) const THREADS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

/// The queue the threads take jobs from.
#[cfg(feature = "driver")]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The process's queue, with its threads started the first time; `None` if no thread could
/// be started (out of threads), in which case checks run where they are asked for.
#[cfg(feature = "driver")]
fn queue() -> Option<&'static Queue> {
    static QUEUE: OnceLock<Option<Arc<Queue>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let queue = Arc::new(Queue { jobs: Mutex::new(VecDeque::new()), ready: Condvar::new() });
        let wanted = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(THREADS);
        let started = (0..wanted)
            .filter(|n| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new().name(format!("moat-hash-{n}")).spawn(move || work(&queue)).is_ok()
            })
            .count();
        (started > 0).then_some(queue)
    });
    queue.as_deref()
}

/// A checking thread: takes jobs until the process ends.
#[cfg(feature = "driver")]
fn work(queue: &Queue) {
    loop {
        let mut jobs = lock(&queue.jobs);
        let job = loop {
            match jobs.pop_front() {
                Some(job) => break job,
                None => jobs = queue.ready.wait(jobs).unwrap_or_else(PoisonError::into_inner),
            }
        };
        drop(jobs);
        job();
    }
}

/// Where a job's answer waits for the future that wants it.
struct Slot<T> {
    /// `Some(None)`: the job panicked.
    answer: Option<Option<T>>,
    waker: Option<Waker>,
}

/// The answer of a job run by [`off_thread`]: `None` if the job panicked.
pub(super) struct OffThread<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Future for OffThread<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = lock(&self.slot);
        match slot.answer.take() {
            Some(answer) => Poll::Ready(answer),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Runs `job` on one of the checking threads, in turn with the others waiting (where it is
/// polled, without the `driver` feature).
pub(super) fn off_thread<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> OffThread<T> {
    let slot = Arc::new(Mutex::new(Slot { answer: None, waker: None }));
    let filled = Arc::clone(&slot);
    let run: Job = Box::new(move || {
        let answer = catch_unwind(AssertUnwindSafe(job)).ok();
        let mut slot = lock(&filled);
        slot.answer = Some(answer);
        let waker = slot.waker.take();
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    });
    #[cfg(feature = "driver")]
    if let Some(queue) = queue() {
        lock(&queue.jobs).push_back(run);
        queue.ready.notify_one();
        return OffThread { slot };
    }
    run();
    OffThread { slot }
}

/// Polls `future` on this thread until it is ready (for tests).
#[cfg(test)]
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "driver")]
    #[test]
    fn jobs_run_on_other_threads_and_at_most_threads_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let caller = std::thread::current().id();
        let answers: Vec<_> = (0..3 * THREADS)
            .map(|n| {
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                off_thread(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    (n, std::thread::current().id())
                })
            })
            .collect();
        for (n, answer) in answers.into_iter().enumerate() {
            let (got, thread) = block_on(answer).expect("the job did not panic");
            assert_eq!(got, n);
            assert_ne!(thread, caller, "job {n} ran on the caller's thread");
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=THREADS).contains(&most), "{most} jobs ran at once");
    }

    #[test]
    fn a_panicking_job_answers_none() {
        let answer = off_thread(|| -> u8 { panic!("on purpose") });
        assert_eq!(block_on(answer), None);
        // The thread survived it.
        assert_eq!(block_on(off_thread(|| 7)), Some(7));
    }
}
