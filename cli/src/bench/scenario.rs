//! A bench run from start to end: connect the subscribers (and idle connections), then the
//! publishers, publish until the count or the time is up, wait for the last messages, close
//! everything and add up what every link saw.
//!
//! The controller runs in the caller's task; connections are opened and driven by tasks on
//! the runtime. It wakes every [`TICK`] to check how far the run is and prints the progress
//! line once a second.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::{FutureExt as _, StreamExt as _};
use moat_mqtt_core::client::options::{BrokerUrl, ClientOptions};
use moat_mqtt_core::codec::QoS;
use moat_mqtt_core::driver::{Connector, Runtime};
use moat_mqtt_core::topic::{TopicFilter, TopicName};

use super::link::{Link, LinkReport, Login, PublishPlan, Role, handshake};
use super::payload::PublishTemplate;
use super::report::{Outcome, Progress};
use super::shards::BenchRuntime;
use super::stats::{QosCounts, Shared};
use super::usage::{CpuClock, ProcessUsage};
use crate::broker_cmd::RuntimeChoice;
use crate::client_opts::{Stop, without_os_error};

/// How often the controller looks at the run.
const TICK: Duration = Duration::from_millis(20);

/// How long one connection may take to reach CONNACK (and SUBACK).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long closing connections may take at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Idle connections.
    Conn,
    /// Publishers only.
    Pub,
    /// Subscribers only.
    Sub,
    /// Many publishers, few subscribers.
    Fanin,
    /// Few publishers, many subscribers.
    Fanout,
    /// Publisher/subscriber pairs.
    P2p,
}

impl Kind {
    /// The scenario's name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Conn => "conn",
            Self::Pub => "pub",
            Self::Sub => "sub",
            Self::Fanin => "fanin",
            Self::Fanout => "fanout",
            Self::P2p => "p2p",
        }
    }
}

/// One publisher of the plan.
#[derive(Debug, Clone)]
pub(crate) struct PubSpec {
    /// Its number (`%i`), also the publisher index in its payloads.
    pub(crate) index: u32,
    /// Where it publishes.
    pub(crate) topic: TopicName,
}

/// One subscriber of the plan.
#[derive(Debug, Clone)]
pub(crate) struct SubSpec {
    /// Its number (`%i`).
    pub(crate) index: u32,
    /// What it subscribes to.
    pub(crate) filters: Vec<TopicFilter>,
}

/// A run, laid out from the command line.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The scenario.
    pub(crate) kind: Kind,
    /// The broker.
    pub(crate) url: BrokerUrl,
    /// The transport settings (URL, CA, name check) the connector is made from.
    pub(crate) options: ClientOptions,
    /// Keep-alive in seconds.
    pub(crate) keep_alive: u16,
    /// Client id prefix.
    pub(crate) prefix: String,
    /// The publishers.
    pub(crate) publishers: Vec<PubSpec>,
    /// The subscribers.
    pub(crate) subscribers: Vec<SubSpec>,
    /// The numbers of the idle connections (`conn`).
    pub(crate) idle: Vec<u32>,
    /// QoS of publications and subscriptions.
    pub(crate) qos: QoS,
    /// Payload bytes.
    pub(crate) size: usize,
    /// Publish retained.
    pub(crate) retain: bool,
    /// Messages to publish in all.
    pub(crate) limit: Option<u64>,
    /// Messages the subscribers of `sub` wait for in all.
    pub(crate) sub_limit: Option<u64>,
    /// Messages per second per publisher.
    pub(crate) rate: Option<f64>,
    /// QoS 1/2 window per publisher.
    pub(crate) inflight: u16,
    /// How long to publish (or, for `sub`, receive; for `conn`, hold).
    pub(crate) duration: Option<Duration>,
    /// How long to wait for stragglers once publishing is over.
    pub(crate) drain: Duration,
    /// Time between two connection starts.
    pub(crate) connect_interval: Option<Duration>,
    /// Handshakes at once, at most.
    pub(crate) connect_concurrency: usize,
    /// Unsent bytes the kernel may hold per connection (`--max-unsent`); `None`: no limit.
    pub(crate) max_unsent: Option<u32>,
    /// JSON summary.
    pub(crate) json: bool,
    /// Progress line on stderr.
    pub(crate) progress: bool,
    /// The runtime.
    pub(crate) runtime: RuntimeChoice,
    /// Threads of the runtime.
    pub(crate) threads: usize,
    /// The broker's process, to measure.
    pub(crate) broker_pid: Option<u32>,
}

impl Plan {
    /// The messages publisher number `n` (0-based position) sends, if there is a limit:
    /// the limit shared out, the first ones taking the remainder.
    fn limit_of(&self, position: usize) -> Option<u64> {
        let limit = self.limit?;
        let count = self.publishers.len() as u64;
        Some(limit / count + u64::from((position as u64) < limit % count))
    }
}

/// A connected link's handles: its report when it ends, and its stop signal.
struct Handle {
    report: oneshot::Receiver<LinkReport>,
    stop: Option<oneshot::Sender<()>>,
}

/// A link spawned on the runtime.
fn spawn_link<S, R>(runtime: &R, link: Link<S, R>, stop: oneshot::Sender<()>) -> Handle
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin + Send + 'static,
    R: BenchRuntime,
{
    let (tx, rx) = oneshot::channel();
    runtime.spawn_here(Box::pin(async move {
        let _ = tx.send(link.await);
    }));
    Handle { report: rx, stop: Some(stop) }
}

/// `future`, or an error once `timeout` has passed.
async fn within<R: Runtime, T>(
    runtime: &R,
    timeout: Duration,
    future: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let deadline = runtime.sleep_until(runtime.now() + timeout);
    match future::select(std::pin::pin!(future), deadline).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// Everything a connecting task needs.
struct Dial<C, R> {
    connector: Arc<C>,
    runtime: R,
    shared: Arc<Shared>,
    url: BrokerUrl,
    login: Login,
    qos: QoS,
}

impl<C: Connector, R: Runtime> Dial<C, R> {
    /// Opens one connection as `client_id` (subscribed to `filters`); counts it as connected
    /// or failed.
    async fn open(&self, client_id: &str, filters: &[TopicFilter]) -> Option<(C::Stream, BytesMut)> {
        let started = self.runtime.now();
        let result = within(&self.runtime, CONNECT_TIMEOUT, async {
            let mut stream = self
                .connector
                .connect(&self.url)
                .await
                .map_err(|e| format!("{client_id}: cannot connect: {}", without_os_error(&e.to_string())))?;
            let inbox = handshake(&mut stream, client_id, &self.login, filters, self.qos).await?;
            Ok((stream, inbox))
        })
        .await;
        match result {
            Ok(opened) => {
                let now = self.runtime.now();
                let ns = u64::try_from(now.duration_since(started).as_nanos()).unwrap_or(u64::MAX);
                self.shared.connected(ns, now);
                Some(opened)
            }
            Err(e) if e.starts_with(client_id) => {
                self.shared.connect_failed(e);
                None
            }
            Err(e) => {
                self.shared.connect_failed(format!("{client_id}: {e}"));
                None
            }
        }
    }
}

/// Opens `count` connections, paced by the plan, `make(i)` each; the results in any order.
///
/// `concurrency` tasks of their own take the next number in turn, so that each opening
/// connection is woken on its own. (One task driving them all, through `buffer_unordered`,
/// left a few of 19,000 tokio connections unwoken for seconds after their TCP handshake, so
/// that the broker closed them for sending no CONNECT.)
async fn open_all<R, T, F, Fut>(
    runtime: R,
    plan_interval: Option<Duration>,
    concurrency: usize,
    count: usize,
    make: F,
) -> Vec<T>
where
    R: Runtime,
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<T>> + Send + 'static,
{
    let start = runtime.now();
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let (opened_tx, opened_rx) = futures::channel::mpsc::unbounded();
    for _ in 0..concurrency.min(count) {
        let (runtime, next, make, opened_tx) =
            (runtime.clone(), Arc::clone(&next), Arc::clone(&make), opened_tx.clone());
        runtime.clone().spawn(Box::pin(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                if let Some(interval) = plan_interval {
                    runtime.sleep_until(start + interval * u32::try_from(i).unwrap_or(u32::MAX)).await;
                }
                if let Some(opened) = make(i).await {
                    // The receiver lives until every sender is gone.
                    let _ = opened_tx.unbounded_send(opened);
                }
            }
        }));
    }
    drop(opened_tx);
    opened_rx.collect().await
}

/// Runs `plan` with `connector` on `runtime` until it is over or `stop` fires (Ctrl-C).
pub(crate) async fn run<R, C>(runtime: R, connector: Arc<C>, plan: &Plan, stop: Stop) -> Outcome
where
    R: BenchRuntime,
    C: Connector,
{
    let shared = Arc::new(Shared::new());
    let tool_cpu = CpuClock::this_process();
    let broker = plan.broker_pid.map(ProcessUsage::start);
    let mut control = Control::new(runtime.clone(), Arc::clone(&shared), plan, stop);
    let dial = Arc::new(Dial {
        connector,
        runtime: runtime.clone(),
        shared: Arc::clone(&shared),
        url: plan.url.clone(),
        login: Login {
            keep_alive: plan.keep_alive,
            username: plan.url.username.clone(),
            password: plan.url.password.clone(),
        },
        qos: plan.qos,
    });
    let connect_started = runtime.now();

    // Subscribers and idle connections, each running as soon as it is up.
    let receivers: Vec<(String, Vec<TopicFilter>, Role)> = plan
        .subscribers
        .iter()
        .map(|s| (format!("{}-sub-{}", plan.prefix, s.index), s.filters.clone(), Role::Subscriber))
        .chain(plan.idle.iter().map(|n| (format!("{}-conn-{n}", plan.prefix), Vec::new(), Role::Idle)))
        .collect();
    let receivers = Arc::new(receivers);
    let (opened_tx, mut opened_rx) = oneshot::channel();
    {
        let (dial, runtime, receivers) = (Arc::clone(&dial), runtime.clone(), Arc::clone(&receivers));
        let (interval, concurrency) = (plan.connect_interval, plan.connect_concurrency);
        let keep_alive = plan.keep_alive;
        runtime.clone().spawn(Box::pin(async move {
            let handles = open_all(runtime.clone(), interval, concurrency, receivers.len(), move |i| {
                let (dial, runtime, receivers) = (Arc::clone(&dial), runtime.clone(), Arc::clone(&receivers));
                async move {
                    let (id, filters, role) = &receivers[i];
                    let (stream, inbox) = dial.open(id, filters).await?;
                    let role = match role {
                        Role::Idle => Role::Idle,
                        _ => Role::Subscriber,
                    };
                    let (stop_tx, stop_rx) = oneshot::channel();
                    let link = Link::new(
                        stream,
                        runtime.clone(),
                        Arc::clone(&dial.shared),
                        id.clone(),
                        inbox,
                        role,
                        keep_alive,
                        stop_rx,
                    );
                    Some((i, spawn_link(&runtime, link, stop_tx)))
                }
            })
            .await;
            let _ = opened_tx.send(handles);
        }));
    }
    let mut receiver_handles = match control.wait_for(&mut opened_rx).await {
        Some(Ok(handles)) => handles,
        Some(Err(_)) | None => Vec::new(), // stopped while connecting: the connecting task goes on alone
    };
    receiver_handles.sort_by_key(|(i, _)| *i);

    // Publishers: all connected first, then started together.
    let mut publisher_handles: Vec<(usize, Handle)> = Vec::new();
    let mut start = None;
    if !plan.publishers.is_empty() && !control.stopped {
        let (opened_tx, mut opened_rx) = oneshot::channel();
        let ids: Arc<Vec<String>> =
            Arc::new(plan.publishers.iter().map(|p| format!("{}-pub-{}", plan.prefix, p.index)).collect());
        {
            let (dial, runtime, ids) = (Arc::clone(&dial), runtime.clone(), Arc::clone(&ids));
            let (interval, concurrency) = (plan.connect_interval, plan.connect_concurrency);
            runtime.clone().spawn(Box::pin(async move {
                let streams = open_all(runtime, interval, concurrency, ids.len(), move |i| {
                    let (dial, ids) = (Arc::clone(&dial), Arc::clone(&ids));
                    async move { dial.open(&ids[i], &[]).await.map(|opened| (i, opened)) }
                })
                .await;
                let _ = opened_tx.send(streams);
            }));
        }
        if let Some(Ok(streams)) = control.wait_for(&mut opened_rx).await {
            let t0 = runtime.now();
            start = Some(t0);
            control.started(t0);
            for (i, (stream, inbox)) in streams {
                let spec = &plan.publishers[i];
                let template =
                    match PublishTemplate::new(spec.topic.clone(), plan.qos, plan.retain, plan.size, spec.index) {
                        Ok(t) => t,
                        Err(e) => {
                            shared.error(format!("{}: cannot encode a PUBLISH of {} bytes: {e}", ids[i], plan.size));
                            continue;
                        }
                    };
                let publish = PublishPlan {
                    template,
                    qos: plan.qos,
                    limit: plan.limit_of(i),
                    rate: plan.rate,
                    start: t0,
                    end: plan.duration.map(|d| t0 + d),
                    window: plan.inflight,
                    drain: plan.drain,
                };
                let (stop_tx, stop_rx) = oneshot::channel();
                let link = Link::new(
                    stream,
                    runtime.clone(),
                    Arc::clone(&shared),
                    ids[i].clone(),
                    inbox,
                    Role::Publisher(Box::new(publish)),
                    plan.keep_alive,
                    stop_rx,
                );
                publisher_handles.push((i, spawn_link(&runtime, link, stop_tx)));
            }
        }
    }
    let connected_at = shared.lock().last_connect;
    let connect_secs = connected_at.map(|at| at.saturating_duration_since(connect_started).as_secs_f64());

    // Run: publishers until they are done; `sub` and `conn` for their duration or count.
    let mut sent_by: HashMap<usize, u64> = HashMap::new();
    let run_start = start.unwrap_or_else(|| runtime.now());
    if start.is_none() {
        control.started(run_start);
    }
    if !publisher_handles.is_empty() {
        let mut reports: Vec<Option<LinkReport>> = publisher_handles.iter().map(|_| None).collect();
        // Publishers end by themselves; this only bounds a stuck one.
        let mut give_up = plan.duration.map(|d| run_start + d + plan.drain + CLOSE_TIMEOUT);
        loop {
            let waited = control
                .wait(|t| {
                    for ((_, handle), report) in publisher_handles.iter_mut().zip(reports.iter_mut()) {
                        if report.is_none() {
                            match handle.report.try_recv() {
                                Ok(Some(r)) => *report = Some(r),
                                Ok(None) => {}
                                Err(_) => *report = Some(LinkReport::Idle), // its task is gone
                            }
                        }
                    }
                    let all_in = reports.iter().all(Option::is_some);
                    (all_in || give_up.is_some_and(|at| t.now >= at)).then_some(())
                })
                .await;
            if waited.is_some() {
                break;
            }
            // Ctrl-C: stop publishing, wait for the acknowledgements a while.
            for (_, handle) in &mut publisher_handles {
                if let Some(stop) = handle.stop.take() {
                    let _ = stop.send(());
                }
            }
            give_up = Some(runtime.now() + plan.drain + CLOSE_TIMEOUT);
            control.resume();
        }
        for ((i, _), report) in publisher_handles.iter().zip(reports) {
            match report {
                Some(LinkReport::Publisher { sent }) => {
                    sent_by.insert(*i, sent);
                }
                Some(_) => {}
                None => shared.error(format!("{}: did not finish in time", ids_of(plan, *i))),
            }
        }
    } else if plan.publishers.is_empty() && !control.stopped {
        let until = plan.duration.map(|d| run_start + d);
        let sub_limit = plan.sub_limit;
        control
            .wait(|t| {
                let time_up = until.is_some_and(|u| t.now >= u);
                let count_reached = sub_limit.is_some_and(|l| t.received >= l);
                (time_up || count_reached).then_some(())
            })
            .await;
    }

    // Drain: wait for what the subscribers should still get.
    let expected = (!plan.publishers.is_empty() && !plan.subscribers.is_empty()).then(|| expected(plan, &sent_by));
    if let Some(expected) = expected.filter(|_| !control.stopped) {
        let drain = plan.drain;
        let drain_start = runtime.now();
        control
            .wait(|t| {
                let quiet_since = t.last_receive.map_or(drain_start, |r| r.max(drain_start));
                (t.received >= expected || t.now >= quiet_since + drain).then_some(())
            })
            .await;
    }
    let broker_usage = broker.map(ProcessUsage::sample);

    // Close the receivers and gather what they saw.
    for (_, handle) in &mut receiver_handles {
        if let Some(stop) = handle.stop.take() {
            let _ = stop.send(());
        }
    }
    let mut trackers = Vec::new();
    let close_deadline = runtime.now() + CLOSE_TIMEOUT;
    for (i, handle) in receiver_handles {
        let remaining = close_deadline.saturating_duration_since(runtime.now());
        let report = within(&runtime, remaining, handle.report.map(|r| r.map_err(|_| String::new()))).await;
        if let Ok(LinkReport::Subscriber(tracker)) = report {
            trackers.push((i, tracker));
        } else if report.is_err() && i < plan.subscribers.len() {
            shared.error(format!(
                "{}-sub-{}: did not close within {} s",
                plan.prefix,
                plan.subscribers[i].index,
                CLOSE_TIMEOUT.as_secs()
            ));
        }
    }

    // Losses, duplicates and reordering per QoS.
    let mut per_qos = [QosCounts::default(); 3];
    let effective_qos = plan.qos as usize;
    for (i, tracker) in trackers {
        let mut foreign = tracker.foreign;
        let mut seen = tracker.into_publishers();
        if let Some(spec) = plan.subscribers.get(i).filter(|_| !plan.publishers.is_empty()) {
            // Publishers of this run: every message of a matching one should have arrived.
            for (position, publisher) in plan.publishers.iter().enumerate() {
                let matches = spec.filters.iter().any(|f| f.matches(&publisher.topic));
                let entry = seen.remove(&publisher.index);
                if !matches {
                    if let Some(entry) = entry {
                        for (q, counts) in entry.counts.iter().enumerate() {
                            foreign[q] += counts.received;
                        }
                    }
                    continue;
                }
                let sent = sent_by.get(&position).copied().unwrap_or(0);
                let q = entry.as_ref().map_or(effective_qos, |e| usize::from(e.qos.min(2)));
                let unique = entry.as_ref().map_or(0, |e| e.unique);
                per_qos[q].lost += sent.saturating_sub(unique);
                if let Some(entry) = entry {
                    for (total, counts) in per_qos.iter_mut().zip(&entry.counts) {
                        total.add(counts);
                    }
                }
            }
        }
        // Anyone else (another process's publishers): only the gaps tell of losses.
        for entry in seen.into_values() {
            for (total, counts) in per_qos.iter_mut().zip(&entry.counts) {
                total.add(counts);
            }
            per_qos[usize::from(entry.qos.min(2))].lost += entry.missing;
        }
        for (total, n) in per_qos.iter_mut().zip(foreign) {
            total.received += n;
        }
    }

    control.finish();
    let totals = shared.lock();
    Outcome::new(
        plan,
        &totals,
        run_start,
        connect_secs,
        expected,
        per_qos,
        tool_cpu.elapsed(),
        broker_usage,
        control.stopped,
    )
}

/// The client id of publisher `position`.
fn ids_of(plan: &Plan, position: usize) -> String {
    format!("{}-pub-{}", plan.prefix, plan.publishers[position].index)
}

/// Deliveries the subscribers should get: per subscriber, what each matching publisher sent.
fn expected(plan: &Plan, sent_by: &HashMap<usize, u64>) -> u64 {
    plan.subscribers
        .iter()
        .map(|s| {
            plan.publishers
                .iter()
                .enumerate()
                .filter(|(_, p)| s.filters.iter().any(|f| f.matches(&p.topic)))
                .map(|(i, _)| sent_by.get(&i).copied().unwrap_or(0))
                .sum::<u64>()
        })
        .sum()
}

/// What a wait condition sees of the run.
pub(crate) struct Glance {
    /// Now.
    pub(crate) now: Instant,
    /// Messages received so far.
    pub(crate) received: u64,
    /// When the last one was.
    pub(crate) last_receive: Option<Instant>,
}

/// The controller's clock, progress line and Ctrl-C.
struct Control<R> {
    runtime: R,
    shared: Arc<Shared>,
    progress: Option<Progress>,
    stop: futures::future::Fuse<Stop>,
    /// Ctrl-C was pressed.
    stopped: bool,
    /// A stop arrived and the current wait should end.
    pending_stop: bool,
    /// When to roll the latency interval without a progress line.
    next_roll: Instant,
}

impl<R: Runtime + Unpin> Control<R> {
    fn new(runtime: R, shared: Arc<Shared>, plan: &Plan, stop: Stop) -> Self {
        let progress = plan.progress.then(|| Progress::new(runtime.now(), plan));
        let next_roll = runtime.now();
        Self { runtime, shared, progress, stop: stop.fuse(), stopped: false, pending_stop: false, next_roll }
    }

    /// Marks when publishing started (the progress line counts from there).
    fn started(&mut self, at: Instant) {
        if let Some(progress) = &mut self.progress {
            progress.started(at);
        }
    }

    /// After a stop was handled, lets the next wait run to its condition again (a second
    /// Ctrl-C ends it).
    fn resume(&mut self) {
        self.pending_stop = false;
    }

    /// Waits until `done` gives a value (checked every [`TICK`]), printing progress; `None`
    /// if Ctrl-C came first.
    async fn wait<T>(&mut self, mut done: impl FnMut(&Glance) -> Option<T>) -> Option<T> {
        loop {
            let now = self.runtime.now();
            let glance = {
                let t = self.shared.lock();
                Glance { now, received: t.received, last_receive: t.last_receive }
            };
            if let Some(value) = done(&glance) {
                return Some(value);
            }
            if self.pending_stop {
                return None;
            }
            self.tick(now);
            let sleep = self.runtime.sleep_until(now + TICK);
            if let Either::Right(((), _)) = future::select(sleep, &mut self.stop).await {
                self.stopped = true;
                self.pending_stop = true;
            }
        }
    }

    /// Waits for `future`, printing progress; `None` if Ctrl-C came first.
    async fn wait_for<F: Future + Unpin>(&mut self, future: &mut F) -> Option<F::Output> {
        loop {
            if self.pending_stop {
                return None;
            }
            let now = self.runtime.now();
            self.tick(now);
            let sleep = self.runtime.sleep_until(now + TICK);
            match future::select(&mut *future, future::select(sleep, &mut self.stop)).await {
                Either::Left((output, _)) => return Some(output),
                Either::Right((Either::Left(_), _)) => {}
                Either::Right((Either::Right(_), _)) => {
                    self.stopped = true;
                    self.pending_stop = true;
                }
            }
        }
    }

    /// Prints the progress line when it is due (or, without one, rolls the latency interval).
    fn tick(&mut self, now: Instant) {
        match &mut self.progress {
            Some(progress) => progress.tick(now, &self.shared),
            None if now >= self.next_roll => {
                // No progress line: still keep the interval histogram small and cheap.
                self.shared.roll();
                self.next_roll = now + Duration::from_secs(1);
            }
            None => {}
        }
    }

    /// Ends the progress line.
    fn finish(&mut self) {
        if let Some(progress) = &mut self.progress {
            progress.finish(self.runtime.now(), &self.shared);
        }
    }
}
