//! Links served in groups: one task polls many links, so an idle connection costs a slot and
//! its state, not a task, a timer and a waker registration of its own.
//!
//! A broker has a few groups per thread (each one task of the runtime). A group owns its links;
//! a link is woken through its [`LinkSignal`] (the waker its socket and the router use), which
//! puts the link's slot on the group's ready list and wakes the group. Deadlines (keep-alive,
//! CONNECT timeout, close linger) wait in one heap per group, behind one runtime timer.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

use super::poller::{Poller, PollerSource};
use super::runtime::{BoxFuture, Runtime, WatchedPoller};

/// Link polls per poll of a group before it yields to other tasks.
const POLLS_PER_TURN: usize = 128;
/// Rounds of the socket poller's dispatch per poll of a group, at most.
const DISPATCHES_PER_TURN: usize = 4;
/// A slot index not yet given (the link waits in the group's inbox).
const NO_SLOT: u32 = u32::MAX;

/// A link as its group sees it: something to poll, with a deadline.
pub(super) trait Served: Send {
    /// Makes progress; `Ready` when the link is over and may be dropped.
    fn poll_link(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// When the link wants to be polled even if nothing wakes it.
    fn deadline(&self) -> Option<Instant>;
    /// The link's signal, which is also its waker.
    fn signal(&self) -> &Arc<LinkSignal>;
}

/// How the router, the socket and shutdown reach one link: its waker, plus what it is asked.
#[derive(Debug)]
pub(super) struct LinkSignal {
    group: Arc<GroupShared>,
    /// The link's slot in its group, or [`NO_SLOT`] while it waits to be adopted.
    slot: AtomicU32,
    /// On the group's ready list already (cleared just before the link is polled).
    queued: AtomicBool,
    /// The router has deliveries waiting for this link.
    pub(super) deliveries: AtomicBool,
    /// The router lets this link read again (back-pressure over).
    pub(super) resume: AtomicBool,
    /// The router (or shutdown) wants this link closed; the reason waits in the broker's
    /// state (`State::take_close`), so that every idle link does not carry room for one.
    close: AtomicBool,
}

impl LinkSignal {
    /// Whether the link was asked to close since it last looked.
    pub(super) fn take_close(&self) -> bool {
        self.close.swap(false, Ordering::AcqRel)
    }

    pub(super) fn request_close(self: &Arc<Self>) {
        self.close.store(true, Ordering::Release);
        self.wake_by_ref();
    }

    /// The router has deliveries for this link.
    pub(super) fn offer_deliveries(self: &Arc<Self>) {
        self.deliveries.store(true, Ordering::Release);
        self.wake_by_ref();
    }

    pub(super) fn resume_reading(self: &Arc<Self>) {
        self.resume.store(true, Ordering::Release);
        self.wake_by_ref();
    }
}

impl Wake for LinkSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let slot = self.slot.load(Ordering::Acquire);
        // A link not adopted yet is polled when it is adopted.
        if slot != NO_SLOT {
            lock(&self.group.ready).push(slot);
        }
        self.group.waker.wake();
    }
}

/// The half of a group that other tasks touch.
#[derive(Debug, Default)]
pub(super) struct GroupShared {
    /// Slots woken since the group last looked.
    ready: Mutex<Vec<u32>>,
    inbox: Mutex<Inbox>,
    waker: AtomicWaker,
    /// The group's socket poller: the half its sockets register with, made on first use.
    poller: OnceLock<Arc<Poller>>,
    /// The poller's OS half, until the group's task takes it to watch.
    source: Mutex<Option<PollerSource>>,
}

/// Links handed to a group and not yet adopted, and whether its task runs.
#[derive(Default)]
struct Inbox {
    links: Vec<Box<dyn Served>>,
    spawned: bool,
    /// The task ended (the broker stopped with no link left); links sent now are dropped.
    ended: bool,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("links", &self.links.len()).field("ended", &self.ended).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GroupShared {
    /// Wakes the group's task (to notice a shutdown).
    pub(super) fn wake(&self) {
        self.waker.wake();
    }

    /// A signal for a link that will join this group.
    pub(super) fn new_signal(self: &Arc<Self>) -> Arc<LinkSignal> {
        Arc::new(LinkSignal {
            group: Arc::clone(self),
            slot: AtomicU32::new(NO_SLOT),
            queued: AtomicBool::new(false),
            deliveries: AtomicBool::new(false),
            resume: AtomicBool::new(false),
            close: AtomicBool::new(false),
        })
    }

    /// Hands `link` to the group, starting the group's task (with `stopping`, which ends it
    /// once the broker stops and its links are gone) the first time. Gives the link back if
    /// the group has ended.
    pub(super) fn adopt<R: Runtime>(
        self: &Arc<Self>,
        link: Box<dyn Served>,
        runtime: &R,
        stopping: impl Fn() -> bool + Send + 'static,
    ) -> Result<(), Box<dyn Served>> {
        let mut inbox = lock(&self.inbox);
        if inbox.ended {
            return Err(link);
        }
        inbox.links.push(link);
        self.spawn_task(&mut inbox, runtime, stopping);
        drop(inbox);
        self.waker.wake();
        Ok(())
    }

    /// The group's socket poller (number `index` of the broker's groups), made and handed to
    /// the group's task (started as in [`adopt`](Self::adopt)) the first time.
    pub(super) fn poller<R: Runtime>(
        self: &Arc<Self>,
        index: usize,
        runtime: &R,
        stopping: impl Fn() -> bool + Send + 'static,
    ) -> io::Result<Arc<Poller>> {
        if let Some(poller) = self.poller.get() {
            return Ok(Arc::clone(poller));
        }
        let mut inbox = lock(&self.inbox);
        if let Some(poller) = self.poller.get() {
            return Ok(Arc::clone(poller));
        }
        if inbox.ended {
            return Err(io::Error::other("the broker has stopped"));
        }
        let (source, poller) = PollerSource::new(index)?;
        *lock(&self.source) = Some(source);
        let _ = self.poller.set(Arc::clone(&poller));
        self.spawn_task(&mut inbox, runtime, stopping);
        drop(inbox);
        // The task takes the poller's OS half at its next poll.
        self.waker.wake();
        Ok(poller)
    }

    /// Starts the group's task unless it runs already (`inbox` is the group's, locked).
    fn spawn_task<R: Runtime>(
        self: &Arc<Self>,
        inbox: &mut Inbox,
        runtime: &R,
        stopping: impl Fn() -> bool + Send + 'static,
    ) {
        if inbox.spawned {
            return;
        }
        inbox.spawned = true;
        let group = LinkGroup {
            shared: Arc::clone(self),
            runtime: runtime.clone(),
            stopping: Box::new(stopping),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            run: Vec::new(),
            epoch: runtime.now(),
            timers: BinaryHeap::new(),
            sleep: None,
            watch: None,
        };
        runtime.spawn(Box::pin(group));
    }
}

/// One slot of a group: a link and the deadline it is registered under in the heap
/// ([`NOT_ARMED`] if none).
struct Slot {
    link: Box<dyn Served>,
    armed: Tick,
}

/// A deadline in whole milliseconds since the group's epoch (rounded up, so that it never
/// fires early): half the size of an `Instant`, in every slot and heap entry.
type Tick = u64;

/// A slot with no deadline in the heap.
const NOT_ARMED: Tick = Tick::MAX;

/// The task of one group.
struct LinkGroup<R: Runtime> {
    shared: Arc<GroupShared>,
    runtime: R,
    stopping: Box<dyn Fn() -> bool + Send>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    live: usize,
    /// Slots to poll in this turn.
    run: Vec<u32>,
    /// What deadline ticks count from.
    epoch: Instant,
    /// Deadlines by slot; an entry whose slot is armed for another time is stale and skipped.
    timers: BinaryHeap<Reverse<(Tick, u32)>>,
    sleep: Option<(Instant, BoxFuture)>,
    /// The group's socket poller, watched by the runtime, once there is one.
    watch: Option<Box<dyn WatchedPoller>>,
}

impl<R: Runtime> LinkGroup<R> {
    /// Moves new links into slots; each is polled in this turn.
    fn adopt_inbox(&mut self) {
        let links = std::mem::take(&mut lock(&self.shared.inbox).links);
        for link in links {
            let index = match self.free.pop() {
                Some(index) => index,
                None => {
                    self.slots.push(None);
                    u32::try_from(self.slots.len() - 1).unwrap_or(NO_SLOT - 1)
                }
            };
            link.signal().slot.store(index, Ordering::Release);
            self.slots[index as usize] = Some(Slot { link, armed: NOT_ARMED });
            self.live += 1;
            self.run.push(index);
        }
    }

    /// The tick of `at`: whole milliseconds since the epoch, rounded up.
    fn tick(&self, at: Instant) -> Tick {
        let since = at.saturating_duration_since(self.epoch);
        let ms = since.as_millis().saturating_add(u128::from(!since.subsec_nanos().is_multiple_of(1_000_000)));
        Tick::try_from(ms).unwrap_or(NOT_ARMED - 1).min(NOT_ARMED - 1)
    }

    /// The instant of `tick`.
    fn instant(&self, tick: Tick) -> Instant {
        self.epoch + Duration::from_millis(tick)
    }

    /// Adds woken slots and slots whose deadline passed to this turn.
    fn collect_ready(&mut self, now: Instant) {
        self.run.append(&mut lock(&self.shared.ready));
        // Rounded down: a deadline (rounded up) is due once `now` has reached it.
        let now = Tick::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(NOT_ARMED - 1);
        while let Some(&Reverse((at, index))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(Some(slot)) = self.slots.get_mut(index as usize)
                && slot.armed == at
            {
                slot.armed = NOT_ARMED;
                self.run.push(index);
            }
        }
    }

    /// Polls one slot's link; drops it when it is over, else registers its deadline.
    fn poll_slot(&mut self, index: u32) {
        let Some(Some(slot)) = self.slots.get_mut(index as usize) else { return };
        let signal = Arc::clone(slot.link.signal());
        signal.queued.store(false, Ordering::Release);
        let waker = Waker::from(signal);
        if slot.link.poll_link(&mut Context::from_waker(&waker)).is_ready() {
            self.slots[index as usize] = None;
            self.free.push(index);
            self.live -= 1;
            if self.live == 0 {
                // An empty group gives its memory back.
                self.slots = Vec::new();
                self.free = Vec::new();
                self.timers = BinaryHeap::new();
            }
            return;
        }
        let deadline = slot.link.deadline();
        if let Some(deadline) = deadline {
            let tick = self.tick(deadline);
            if let Some(Some(slot)) = self.slots.get_mut(index as usize)
                && tick < slot.armed
            {
                slot.armed = tick;
                self.timers.push(Reverse((tick, index)));
            }
        }
    }

    /// Sets the runtime timer for the earliest deadline; true if it has already passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(&Reverse((next, _))) = self.timers.peek() else {
            self.sleep = None;
            return false;
        };
        let next = self.instant(next);
        if self.sleep.as_ref().is_none_or(|(at, _)| *at != next) {
            self.sleep = Some((next, self.runtime.sleep_until(next)));
        }
        self.sleep.as_mut().is_some_and(|(_, sleep)| sleep.as_mut().poll(cx).is_ready())
    }

    /// Wakes the links (and handshake tasks) whose sockets the group's poller says are ready;
    /// takes the poller to watch when the group has got one.
    fn poll_sockets(&mut self, cx: &mut Context<'_>) {
        if self.watch.is_none() && self.shared.poller.get().is_some() {
            let source = lock(&self.shared.source).take();
            if let Some(source) = source {
                match self.runtime.watch(source) {
                    Ok(watch) => self.watch = Some(watch),
                    Err(e) => log::error!("a link group cannot watch its socket poller: {e}; its connections stall"),
                }
            }
        }
        let Some(watch) = &mut self.watch else { return };
        for _ in 0..DISPATCHES_PER_TURN {
            match watch.poll_dispatch(cx) {
                Poll::Pending => return,
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    log::error!("a link group's socket poller failed: {e}; its connections stall");
                    self.watch = None;
                    return;
                }
            }
        }
        // Still more: come back after the links woken so far had their turn.
        cx.waker().wake_by_ref();
    }

    /// Ends the task when the broker stops and no link is left; after this, links sent to
    /// the group are refused.
    fn try_end(&mut self) -> bool {
        if self.live > 0 || !(self.stopping)() {
            return false;
        }
        let mut inbox = lock(&self.shared.inbox);
        if !inbox.links.is_empty() {
            return false;
        }
        inbox.ended = true;
        true
    }
}

// Nothing in a group is pinned: its timer is boxed, its links are polled through `&mut`.
impl<R: Runtime> Unpin for LinkGroup<R> {}

impl<R: Runtime> Future for LinkGroup<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.shared.waker.register(cx.waker());
        let mut budget = POLLS_PER_TURN;
        loop {
            this.poll_sockets(cx);
            this.adopt_inbox();
            this.collect_ready(this.runtime.now());
            if this.run.is_empty() {
                if this.poll_timer(cx) {
                    continue;
                }
                if this.try_end() {
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            let mut run = std::mem::take(&mut this.run);
            let mut polled = 0;
            for &index in &run {
                if polled == budget {
                    break;
                }
                this.poll_slot(index);
                polled += 1;
            }
            budget -= polled;
            run.drain(..polled);
            // Slots woken while polling were added to `this.run`; keep the order.
            run.append(&mut this.run);
            this.run = run;
            if budget == 0 {
                // Still busy: let other tasks run, then come back.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}
