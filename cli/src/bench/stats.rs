//! Counting: what every link adds up locally and hands over once per poll ([`Delta`]), the
//! run's totals behind one lock ([`Shared`]), latency histograms, and per-publisher sequence
//! tracking in each subscriber ([`SeqTracker`]) for losses, duplicates and reordering.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hdrhistogram::Histogram;

/// The largest latency a histogram holds exactly: 100 s, in nanoseconds (larger ones are
/// counted as this).
const MAX_LATENCY_NS: u64 = 100_000_000_000;

/// Error messages kept for the summary; the rest are only counted.
const ERROR_SAMPLES: usize = 5;

/// Gap ranges kept per publisher in a subscriber; older ones are final losses.
const MAX_GAPS: usize = 256;

/// A latency histogram in nanoseconds, 2 significant digits (1 % resolution), 1 ns to 100 s.
pub(crate) fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 2).unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// What one link counted since it last handed over.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    /// PUBLISH packets written.
    pub(crate) sent: u64,
    /// QoS 1/2 publications completed (PUBACK, PUBCOMP).
    pub(crate) acked: u64,
    /// PUBLISH packets received.
    pub(crate) received: u64,
    /// Latencies of the bench messages received, in nanoseconds.
    pub(crate) latencies: Vec<u64>,
    /// When a PUBLISH was last written.
    pub(crate) last_send: Option<Instant>,
    /// When a PUBLISH was last received.
    pub(crate) last_receive: Option<Instant>,
}

impl Delta {
    /// True when there is nothing to hand over.
    fn is_empty(&self) -> bool {
        self.sent == 0 && self.acked == 0 && self.received == 0 && self.latencies.is_empty()
    }
}

/// The run's totals so far.
#[derive(Debug)]
pub(crate) struct Totals {
    /// PUBLISH packets written by every publisher.
    pub(crate) sent: u64,
    /// QoS 1/2 publications completed.
    pub(crate) acked: u64,
    /// PUBLISH packets received by every subscriber.
    pub(crate) received: u64,
    /// Connections that reached CONNACK (and SUBACK for subscribers).
    pub(crate) connected: u64,
    /// Connections that could not be opened or were refused.
    pub(crate) connect_failed: u64,
    /// Failures of any kind: connects, refusals, lost connections, protocol errors.
    pub(crate) errors: u64,
    /// The first few error messages.
    pub(crate) error_samples: Vec<String>,
    /// Publish-to-receive latency of the bench messages received before the last
    /// [`Shared::roll`]; see [`Totals::latency`] for all of them.
    pub(crate) earlier_latency: Histogram<u64>,
    /// The same, since the last [`Shared::roll`] (the progress line's interval).
    pub(crate) interval_latency: Histogram<u64>,
    /// Time from starting to dial to CONNACK (and SUBACK), per connection.
    pub(crate) connect_latency: Histogram<u64>,
    /// When the first PUBLISH was written.
    pub(crate) first_send: Option<Instant>,
    /// When the last PUBLISH was written.
    pub(crate) last_send: Option<Instant>,
    /// When the first PUBLISH was received.
    pub(crate) first_receive: Option<Instant>,
    /// When the last PUBLISH was received.
    pub(crate) last_receive: Option<Instant>,
    /// When the last connection came up.
    pub(crate) last_connect: Option<Instant>,
}

impl Totals {
    /// Every latency recorded.
    pub(crate) fn latency(&self) -> Histogram<u64> {
        let mut all = self.earlier_latency.clone();
        // Same bounds: adding cannot fail.
        let _ = all.add(&self.interval_latency);
        all
    }
}

/// The totals, shared by every link and the controller.
#[derive(Debug)]
pub(crate) struct Shared {
    totals: Mutex<Totals>,
}

impl Shared {
    /// Empty totals.
    pub(crate) fn new() -> Self {
        Self {
            totals: Mutex::new(Totals {
                sent: 0,
                acked: 0,
                received: 0,
                connected: 0,
                connect_failed: 0,
                errors: 0,
                error_samples: Vec::new(),
                earlier_latency: histogram(),
                interval_latency: histogram(),
                connect_latency: histogram(),
                first_send: None,
                last_send: None,
                first_receive: None,
                last_receive: None,
                last_connect: None,
            }),
        }
    }

    /// The totals, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Totals> {
        // A link that panicked while counting leaves counts that are still counts.
        self.totals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `delta` to the totals and empties it.
    pub(crate) fn flush(&self, delta: &mut Delta) {
        if delta.is_empty() {
            return;
        }
        let mut t = self.lock();
        t.sent += delta.sent;
        t.acked += delta.acked;
        t.received += delta.received;
        for &ns in &delta.latencies {
            t.interval_latency.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
        }
        if let Some(at) = delta.last_send {
            t.first_send.get_or_insert(at);
            t.last_send = Some(t.last_send.map_or(at, |last| last.max(at)));
        }
        if let Some(at) = delta.last_receive {
            t.first_receive.get_or_insert(at);
            t.last_receive = Some(t.last_receive.map_or(at, |last| last.max(at)));
        }
        drop(t);
        delta.sent = 0;
        delta.acked = 0;
        delta.received = 0;
        delta.latencies.clear();
        delta.last_send = None;
        delta.last_receive = None;
    }

    /// Starts a new interval: what was recorded so far moves to the earlier latencies.
    pub(crate) fn roll(&self) {
        let mut t = self.lock();
        let Totals { earlier_latency, interval_latency, .. } = &mut *t;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = earlier_latency.add(&*interval_latency);
        interval_latency.reset();
    }

    /// Counts a failure and keeps its message if it is one of the first.
    pub(crate) fn error(&self, message: String) {
        log::debug!("{message}");
        let mut t = self.lock();
        t.errors += 1;
        if t.error_samples.len() < ERROR_SAMPLES {
            t.error_samples.push(message);
        }
    }

    /// Counts a connection that came up after `latency_ns`.
    pub(crate) fn connected(&self, latency_ns: u64, at: Instant) {
        let mut t = self.lock();
        t.connected += 1;
        t.connect_latency.saturating_record(latency_ns.clamp(1, MAX_LATENCY_NS));
        t.last_connect = Some(at);
    }

    /// Counts a connection that failed, with why.
    pub(crate) fn connect_failed(&self, message: String) {
        self.lock().connect_failed += 1;
        self.error(message);
    }
}

/// Deliveries counted at one QoS.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QosCounts {
    /// Messages received (duplicates included).
    pub(crate) received: u64,
    /// Messages never received. In a scenario that runs its publishers too: sent minus received
    /// (without duplicates); otherwise the gaps in the sequence numbers seen.
    pub(crate) lost: u64,
    /// Messages received more than once.
    pub(crate) duplicates: u64,
    /// Messages received after a later one of the same publisher.
    pub(crate) reordered: u64,
}

impl QosCounts {
    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: &Self) {
        self.received += other.received;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
    }
}

/// What one subscriber saw of one publisher.
#[derive(Debug, Default, Clone)]
pub(crate) struct PublisherSeq {
    /// The sequence number expected next (one past the highest seen).
    next: u64,
    /// Distinct sequence numbers received.
    pub(crate) unique: u64,
    /// Ranges `[start, end)` skipped so far and not (yet) filled by late messages.
    gaps: Vec<(u64, u64)>,
    /// Sequence numbers in `gaps`, plus those in gaps forgotten beyond [`MAX_GAPS`].
    pub(crate) missing: u64,
    /// The QoS of the last message received.
    pub(crate) qos: u8,
    /// Duplicates and reorderings, per QoS of the message.
    pub(crate) counts: [QosCounts; 3],
}

impl PublisherSeq {
    /// Takes sequence number `seq`, received at `qos`.
    fn record(&mut self, seq: u64, qos: u8) {
        let q = usize::from(qos.min(2));
        self.qos = qos;
        self.counts[q].received += 1;
        if seq == self.next {
            self.next += 1;
            self.unique += 1;
        } else if seq > self.next {
            self.gaps.push((self.next, seq));
            self.missing += seq - self.next;
            if self.gaps.len() > MAX_GAPS {
                self.gaps.remove(0);
            }
            self.next = seq + 1;
            self.unique += 1;
        } else if let Some(at) = self.gaps.iter().position(|&(start, end)| (start..end).contains(&seq)) {
            // A late one: it fills part of a gap.
            let (start, end) = self.gaps[at];
            match (seq == start, seq + 1 == end) {
                (true, true) => {
                    self.gaps.remove(at);
                }
                (true, false) => self.gaps[at].0 = seq + 1,
                (false, true) => self.gaps[at].1 = seq,
                (false, false) => {
                    self.gaps[at].1 = seq;
                    self.gaps.insert(at + 1, (seq + 1, end));
                }
            }
            self.missing -= 1;
            self.unique += 1;
            self.counts[q].reordered += 1;
        } else {
            self.counts[q].duplicates += 1;
        }
    }
}

/// Hashes a publisher index by one multiplication (Fibonacci hashing): the keys are small
/// numbers chosen by the bench, not by an adversary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Sequence tracking in one subscriber, per publisher index.
///
/// Entries stay where they are; the slot of the last publisher seen is remembered, so a run
/// of messages from one publisher costs no lookup, and a switch costs one cheap hash.
#[derive(Debug, Default)]
pub(crate) struct SeqTracker {
    slots: Vec<(u32, PublisherSeq)>,
    index: HashMap<u32, usize, BuildHasherDefault<IndexHasher>>,
    /// The slot of the last message's publisher (meaningless while `slots` is empty).
    last: usize,
    /// Messages without a bench header, per QoS.
    pub(crate) foreign: [u64; 3],
}

impl SeqTracker {
    /// Takes message `seq` of `publisher`, received at `qos`.
    pub(crate) fn record(&mut self, publisher: u32, seq: u64, qos: u8) {
        let slot = match self.slots.get(self.last) {
            Some((p, _)) if *p == publisher => self.last,
            _ => {
                let slots = &mut self.slots;
                let slot = *self.index.entry(publisher).or_insert_with(|| {
                    slots.push((publisher, PublisherSeq::default()));
                    slots.len() - 1
                });
                self.last = slot;
                slot
            }
        };
        self.slots[slot].1.record(seq, qos);
    }

    /// Takes a message without a bench header.
    pub(crate) fn record_foreign(&mut self, qos: u8) {
        self.foreign[usize::from(qos.min(2))] += 1;
    }

    /// Every publisher seen, with what was seen of it.
    pub(crate) fn into_publishers(self) -> HashMap<u32, PublisherSeq> {
        self.slots.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{PublisherSeq, SeqTracker};

    fn seen(seqs: &[u64]) -> PublisherSeq {
        let mut tracker = SeqTracker::default();
        for &s in seqs {
            tracker.record(3, s, 1);
            tracker.record(4, 0, 0); // another publisher in between
        }
        tracker.into_publishers().remove(&3).unwrap()
    }

    #[test]
    fn in_order_is_clean() {
        let p = seen(&[0, 1, 2, 3]);
        assert_eq!((p.unique, p.missing, p.counts[1].duplicates, p.counts[1].reordered), (4, 0, 0, 0));
        assert_eq!(p.counts[1].received, 4);
    }

    #[test]
    fn gaps_duplicates_and_late_messages_are_told_apart() {
        // 2 and 3 skipped, 5 twice, 3 late, 0 again; 6..9 skipped, 7 late.
        let p = seen(&[0, 1, 4, 5, 5, 3, 0, 10, 7]);
        assert_eq!(p.counts[1].received, 9);
        assert_eq!(p.counts[1].duplicates, 2);
        assert_eq!(p.counts[1].reordered, 2);
        assert_eq!(p.unique, 7); // 0 1 3 4 5 7 10
        assert_eq!(p.missing, 4); // 2 6 8 9
        assert_eq!(p.gaps, vec![(2, 3), (6, 7), (8, 10)]);
    }

    #[test]
    fn a_late_message_in_the_middle_splits_its_gap() {
        let p = seen(&[0, 9, 4, 4]);
        assert_eq!(p.gaps, vec![(1, 4), (5, 9)]);
        assert_eq!((p.missing, p.counts[1].reordered, p.counts[1].duplicates), (7, 1, 1));
    }
}
