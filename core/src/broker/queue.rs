//! The bounded queue of messages waiting for a subscriber.

use std::collections::VecDeque;

use super::message::Delivery;
use crate::codec::QoS;

/// What happened to a message offered to a full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued, nothing lost.
    Queued,
    /// Queued after evicting the oldest QoS 0 message, or (for a QoS 0 offer) dropped: one
    /// QoS 0 message was lost either way.
    DroppedQos0,
    /// The queue is full of QoS 1/2 messages; this one was not queued.
    Full,
}

/// Messages waiting for a subscriber's inflight window (online) or its return (offline).
///
/// Bounded by a limit the caller passes in. When full, QoS 0 messages are given up first: a
/// QoS 0 offer is dropped, and a QoS 1/2 offer evicts the oldest queued QoS 0 message. When only
/// QoS 1/2 messages are queued, the offer is refused ([`Offer::Full`]), and the router decides
/// (an online subscriber is a slow consumer and is disconnected; offline, the message is
/// counted as dropped).
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    items: VecDeque<Delivery>,
    qos0: usize,
}

impl OutQueue {
    pub(crate) const fn new() -> Self {
        Self { items: VecDeque::new(), qos0: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn offer(&mut self, delivery: Delivery, limit: usize) -> Offer {
        let mut outcome = Offer::Queued;
        if self.items.len() >= limit {
            if delivery.qos == QoS::AtMostOnce || self.qos0 == 0 {
                return if delivery.qos == QoS::AtMostOnce { Offer::DroppedQos0 } else { Offer::Full };
            }
            if let Some(i) = self.items.iter().position(|d| d.qos == QoS::AtMostOnce) {
                self.items.remove(i);
                self.qos0 -= 1;
                outcome = Offer::DroppedQos0;
            }
        }
        if delivery.qos == QoS::AtMostOnce {
            self.qos0 += 1;
        }
        self.items.push_back(delivery);
        outcome
    }

    pub(crate) fn pop(&mut self) -> Option<Delivery> {
        let d = self.items.pop_front()?;
        if d.qos == QoS::AtMostOnce {
            self.qos0 -= 1;
        }
        Some(d)
    }

    /// The next message, if it is QoS 0 (which needs no inflight slot).
    pub(crate) fn front_qos(&self) -> Option<QoS> {
        self.items.front().map(|d| d.qos)
    }

    /// Drops every QoS 0 message (a session going offline keeps only QoS 1/2, MQTT-3.1.2-5),
    /// and returns how many were dropped.
    pub(crate) fn drop_qos0(&mut self) -> usize {
        let before = self.items.len();
        self.items.retain(|d| d.qos != QoS::AtMostOnce);
        self.qos0 = 0;
        before - self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::broker::Message;
    use crate::topic::TopicName;

    fn d(qos: QoS, body: &'static str) -> Delivery {
        let message = Message {
            topic: TopicName::new("t").unwrap(),
            payload: body.into(),
            qos,
            retain: false,
            properties: Default::default(),
        };
        Delivery { message: Arc::new(message), qos, retain: false, seq: 0 }
    }

    #[test]
    fn full_queue_gives_up_qos0_first() {
        let mut q = OutQueue::default();
        assert_eq!(q.offer(d(QoS::AtMostOnce, "a"), 2), Offer::Queued);
        assert_eq!(q.offer(d(QoS::AtLeastOnce, "b"), 2), Offer::Queued);
        // Full: a new QoS 0 message is dropped.
        assert_eq!(q.offer(d(QoS::AtMostOnce, "c"), 2), Offer::DroppedQos0);
        // Full: a QoS 1 message evicts the queued QoS 0 one.
        assert_eq!(q.offer(d(QoS::ExactlyOnce, "d"), 2), Offer::DroppedQos0);
        assert_eq!(q.len(), 2);
        // Full of QoS 1/2: refused.
        assert_eq!(q.offer(d(QoS::AtLeastOnce, "e"), 2), Offer::Full);
        let kept: Vec<_> = std::iter::from_fn(|| q.pop()).map(|x| x.message.payload.clone()).collect();
        assert_eq!(kept, ["b", "d"]);
        assert!(q.is_empty());
    }

    #[test]
    fn going_offline_drops_qos0() {
        let mut q = OutQueue::default();
        for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::AtMostOnce].into_iter().enumerate() {
            assert_eq!(q.offer(d(qos, ["x", "y", "z"][i]), 10), Offer::Queued);
        }
        assert_eq!(q.drop_qos0(), 2);
        assert_eq!(q.front_qos(), Some(QoS::AtLeastOnce));
        assert_eq!(q.len(), 1);
    }
}
