//! An application message as the broker routes it.

use std::sync::Arc;

use bytes::Bytes;

use crate::codec::{Properties, Publish, QoS};
use crate::topic::TopicName;

/// A message being routed: published once, shared by every subscriber it goes to.
///
/// Held behind an [`Arc`], so a fan-out to many subscribers copies a pointer, not the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was published.
    pub topic: TopicName,
    /// The body.
    pub payload: Bytes,
    /// The QoS it was published with; each subscriber gets at most its granted QoS.
    pub qos: QoS,
    /// Whether it was published with RETAIN set.
    pub retain: bool,
    /// MQTT 5 properties to forward (empty before MQTT 5).
    pub properties: Properties,
}

impl Message {
    /// The message a PUBLISH carries.
    #[must_use]
    pub fn from_publish(publish: Publish) -> Self {
        Self {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: publish.properties,
        }
    }
}

impl Message {
    /// The same message with topic and payload in allocations of their own, for storing (retained
    /// messages, wills): decoded ones are slices of a receive buffer and would pin all of it.
    #[must_use]
    pub fn detached(&self) -> Self {
        Self {
            topic: self.topic.detached(),
            payload: Bytes::copy_from_slice(&self.payload),
            qos: self.qos,
            retain: self.retain,
            properties: self.properties.clone(),
        }
    }
}

/// A message on its way to one subscriber, at the QoS that subscriber gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) message: Arc<Message>,
    /// min(published QoS, granted QoS).
    pub(crate) qos: QoS,
    /// The RETAIN flag to send: set only for retained messages sent because of a new
    /// subscription (MQTT-3.3.1-8/9).
    pub(crate) retain: bool,
    /// Its number among the broker's queued messages, set when it is queued: what a store
    /// keeps it under.
    pub(crate) seq: u64,
}
