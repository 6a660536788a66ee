//! The store's own thread: takes the router's changes in batches and writes them, so a slow
//! disk never blocks the router's lock or a runtime worker.
//!
//! Group commit: links hand in changes as they make them ([`StoreWriter::submit`], numbered
//! batches); the thread writes everything that piled up since its last write in one
//! transaction. With `sync: always` that transaction is flushed to disk before the batches it
//! holds are declared durable ([`StoreWriter::durable`]), and links hold back their
//! acknowledgements until then ([`StoreWriter::wait`]); one fsync serves every link that
//! wrote meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::broker::SyncMode;
use crate::broker::persist::{Store, StoreOp};

/// How long changes may wait before a non-durable write (`interval`, `never`), so that memory
/// stays bounded and many changes share a transaction.
const WRITE_DELAY: Duration = Duration::from_millis(100);
/// Changes that make a write start at once, whatever the mode.
const WRITE_NOW: usize = 50_000;
/// How long to wait before trying a failed write again.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Failed attempts of the last write of a shutdown before giving up.
const FINAL_ATTEMPTS: u32 = 3;

/// Runs a [`Store`] on a thread of its own. Clones share the thread.
#[derive(Debug, Clone)]
pub(crate) struct StoreWriter {
    shared: Arc<WriterShared>,
}

#[derive(Debug)]
struct WriterShared {
    sync: SyncMode,
    location: String,
    queue: Mutex<Queue>,
    /// Wakes the thread: changes came, or closing.
    work: Condvar,
    /// The last batch known to be on disk.
    durable: AtomicU64,
    /// Links waiting for a batch to be durable.
    waiters: Mutex<Vec<(u64, Waker)>>,
    /// The thread has written everything and stopped.
    finished: AtomicBool,
}

#[derive(Debug, Default)]
struct Queue {
    ops: Vec<StoreOp>,
    /// Batches handed in so far; the number of the last one.
    submitted: u64,
    closing: bool,
}

impl StoreWriter {
    /// Starts the thread.
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub(crate) fn start(store: Box<dyn Store>, sync: SyncMode) -> std::io::Result<Self> {
        let shared = Arc::new(WriterShared {
            sync,
            location: store.location(),
            queue: Mutex::default(),
            work: Condvar::new(),
            durable: AtomicU64::new(0),
            waiters: Mutex::default(),
            finished: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new().name("moat-store".to_owned()).spawn(move || thread_shared.run(store))?;
        Ok(Self { shared })
    }

    /// Whether links must hold acknowledgements until their changes are durable.
    pub(crate) fn acknowledges_durable(&self) -> bool {
        self.shared.sync == SyncMode::Always
    }

    /// Hands in `ops` (emptied) as the next batch; returns its number. With nothing in `ops`,
    /// returns the last batch's number.
    pub(crate) fn submit(&self, ops: &mut Vec<StoreOp>) -> u64 {
        let mut queue = self.shared.lock_queue();
        if ops.is_empty() {
            return queue.submitted;
        }
        queue.ops.append(ops);
        queue.submitted += 1;
        let now = self.shared.sync == SyncMode::Always || queue.ops.len() >= WRITE_NOW;
        let submitted = queue.submitted;
        drop(queue);
        if now {
            self.shared.work.notify_one();
        }
        submitted
    }

    /// The last batch known to be durable.
    pub(crate) fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Whether batch `seq` is durable; if not, `waker` is woken once it is.
    pub(crate) fn wait(&self, seq: u64, waker: &Waker) -> bool {
        let mut waiters = self.shared.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock the thread takes to wake waiters: no wake-up is missed.
        if self.durable() >= seq {
            return true;
        }
        if !waiters.iter().any(|(s, w)| *s == seq && w.will_wake(waker)) {
            waiters.push((seq, waker.clone()));
        }
        false
    }

    /// Asks the thread to write what is left durably and stop.
    pub(crate) fn close(&self) {
        self.shared.lock_queue().closing = true;
        self.shared.work.notify_one();
    }

    /// Whether the thread has stopped (after [`close`](Self::close)).
    pub(crate) fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Where the store is.
    pub(crate) fn location(&self) -> &str {
        &self.shared.location
    }
}

impl WriterShared {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, mut store: Box<dyn Store>) {
        let mut next_durable = match self.sync {
            SyncMode::Interval(every) => Some(Instant::now() + every),
            SyncMode::Always | SyncMode::Never => None,
        };
        // Whether non-durable writes were made since the last durable one.
        let mut dirty = false;
        // Transactions, durable ones, and changes written, for the closing log line.
        let mut written = (0u64, 0u64, 0usize);
        loop {
            let (ops, batch, closing) = self.next_batch(next_durable);
            let now = Instant::now();
            let due = next_durable.is_some_and(|at| now >= at);
            let durable = closing || self.sync == SyncMode::Always || (due && (dirty || !ops.is_empty()));
            if let (SyncMode::Interval(every), true) = (self.sync, due) {
                next_durable = Some(now + every);
            }
            if !ops.is_empty() || durable {
                self.write(&mut *store, &ops, durable, closing);
                dirty = !durable;
                written.0 += 1;
                written.1 += u64::from(durable);
                written.2 += ops.len();
                if durable {
                    self.declare_durable(batch);
                }
            }
            if closing {
                // Closed (its file lock released) before anyone is told: a broker started
                // right after this one stops can open the same store.
                drop(store);
                self.finished.store(true, Ordering::Release);
                let (transactions, durable, changes) = written;
                log::info!(
                    "persistence store {} written and closed: {changes} changes in {transactions} transactions ({durable} durable)",
                    self.location
                );
                return;
            }
        }
    }

    /// Waits for work and takes it: the changes, the number of the last batch among them, and
    /// whether the broker is closing.
    fn next_batch(&self, next_durable: Option<Instant>) -> (Vec<StoreOp>, u64, bool) {
        let mut queue = self.lock_queue();
        let mut first_seen: Option<Instant> = None;
        loop {
            if queue.closing {
                break;
            }
            let now = Instant::now();
            if !queue.ops.is_empty() {
                let since = *first_seen.get_or_insert(now);
                if self.sync == SyncMode::Always || queue.ops.len() >= WRITE_NOW || now >= since + WRITE_DELAY {
                    break;
                }
            }
            if next_durable.is_some_and(|at| now >= at) {
                break;
            }
            let mut until = next_durable;
            if let Some(since) = first_seen {
                until = Some(until.map_or(since + WRITE_DELAY, |at| at.min(since + WRITE_DELAY)));
            }
            queue = match until {
                Some(at) => {
                    self.work
                        .wait_timeout(queue, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.work.wait(queue).unwrap_or_else(PoisonError::into_inner),
            };
        }
        (std::mem::take(&mut queue.ops), queue.submitted, queue.closing)
    }

    /// Writes until it works (a full disk may be cleared); at shutdown, gives up after a few
    /// attempts.
    fn write(&self, store: &mut dyn Store, ops: &[StoreOp], durable: bool, closing: bool) {
        let mut attempts = 0;
        loop {
            match store.apply(ops, durable) {
                Ok(()) => return,
                Err(error) => {
                    attempts += 1;
                    if closing && attempts >= FINAL_ATTEMPTS {
                        log::error!("{error}; giving up: {} changes are not saved", ops.len());
                        return;
                    }
                    log::error!(
                        "{error}; acknowledgements wait, retrying in {}s (attempt {attempts})",
                        RETRY_DELAY.as_secs()
                    );
                    std::thread::sleep(RETRY_DELAY);
                }
            }
        }
    }

    fn declare_durable(&self, batch: u64) {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        self.durable.fetch_max(batch, Ordering::AcqRel);
        let mut i = 0;
        while i < waiters.len() {
            if waiters[i].0 <= batch {
                waiters.swap_remove(i).1.wake();
            } else {
                i += 1;
            }
        }
    }
}
