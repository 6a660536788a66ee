//! The counters behind `$SYS/broker/...`.

use std::time::Instant;

use super::persist::Totals;

/// An exponentially damped per-minute rate over 1, 5 and 15 minutes, like Unix load averages.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Per-minute rate, damped over 1 minute.
    pub one: f64,
    /// Per-minute rate, damped over 5 minutes.
    pub five: f64,
    /// Per-minute rate, damped over 15 minutes.
    pub fifteen: f64,
    last_total: u64,
}

impl Load {
    fn update(&mut self, total: u64, elapsed_secs: f64) {
        if elapsed_secs <= 0.0 {
            return;
        }
        let per_minute = total.saturating_sub(self.last_total) as f64 * 60.0 / elapsed_secs;
        self.last_total = total;
        for (average, window) in [(&mut self.one, 60.0), (&mut self.five, 300.0), (&mut self.fifteen, 900.0)] {
            let keep = (-elapsed_secs / window).exp();
            *average = *average * keep + per_minute * (1.0 - keep);
        }
    }
}

/// What the broker counts. Totals since start, unless said otherwise.
#[derive(Debug, Clone)]
pub struct Stats {
    started: Instant,
    last_load_update: Instant,
    /// Clients connected now.
    pub clients_connected: u64,
    /// Persistent sessions whose client is not connected now.
    pub clients_disconnected: u64,
    /// The most clients connected at once.
    pub clients_maximum: u64,
    /// Connections accepted (CONNACK 0) since start.
    pub clients_total: u64,
    /// Bytes received from clients.
    pub bytes_received: u64,
    /// Bytes sent to clients.
    pub bytes_sent: u64,
    /// Packets of any kind received.
    pub messages_received: u64,
    /// Packets of any kind sent.
    pub messages_sent: u64,
    /// PUBLISH packets received.
    pub publish_received: u64,
    /// PUBLISH packets sent.
    pub publish_sent: u64,
    /// Messages not delivered to a subscriber they matched: full queues, offline QoS 0, $SYS
    /// publications by clients.
    pub publish_dropped: u64,
    /// PUBLISH packets an authoriser refused (acknowledged and dropped; also counted in
    /// `publish_dropped`).
    pub publish_denied: u64,
    /// SUBSCRIBE filters an authoriser refused.
    pub subscribe_denied: u64,
    /// QoS 1/2 messages in flight (sent, not yet acknowledged), now.
    pub inflight: u64,
    /// Messages queued for clients, now.
    pub stored: u64,
    /// Retained messages, at the last `$SYS` update.
    pub retained: u64,
    /// Subscriptions, at the last `$SYS` update.
    pub subscriptions: u64,
    /// QoS 0 messages evicted from a full queue to make room for QoS 1/2.
    pub queue_evictions: u64,
    /// Clients disconnected because their queue of QoS 1/2 messages filled up.
    pub slow_consumers: u64,
    /// QoS 1/2 messages dropped because an offline session's queue was full.
    pub offline_overflow: u64,
    /// Load: packets of any kind received per minute.
    pub load_messages_received: Load,
    /// Load: packets of any kind sent per minute.
    pub load_messages_sent: Load,
    /// Load: PUBLISH received per minute.
    pub load_publish_received: Load,
    /// Load: PUBLISH sent per minute.
    pub load_publish_sent: Load,
    /// Load: bytes received per minute.
    pub load_bytes_received: Load,
    /// Load: bytes sent per minute.
    pub load_bytes_sent: Load,
}

impl Stats {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            started: now,
            last_load_update: now,
            clients_connected: 0,
            clients_disconnected: 0,
            clients_maximum: 0,
            clients_total: 0,
            bytes_received: 0,
            bytes_sent: 0,
            messages_received: 0,
            messages_sent: 0,
            publish_received: 0,
            publish_sent: 0,
            publish_dropped: 0,
            publish_denied: 0,
            subscribe_denied: 0,
            inflight: 0,
            stored: 0,
            retained: 0,
            subscriptions: 0,
            queue_evictions: 0,
            slow_consumers: 0,
            offline_overflow: 0,
            load_messages_received: Load::default(),
            load_messages_sent: Load::default(),
            load_publish_received: Load::default(),
            load_publish_sent: Load::default(),
            load_bytes_received: Load::default(),
            load_bytes_sent: Load::default(),
        }
    }

    /// The counters that accumulate, for a store.
    pub(crate) fn totals(&self) -> Totals {
        Totals {
            clients_total: self.clients_total,
            clients_maximum: self.clients_maximum,
            bytes_received: self.bytes_received,
            bytes_sent: self.bytes_sent,
            messages_received: self.messages_received,
            messages_sent: self.messages_sent,
            publish_received: self.publish_received,
            publish_sent: self.publish_sent,
            publish_dropped: self.publish_dropped,
            publish_denied: self.publish_denied,
            subscribe_denied: self.subscribe_denied,
            queue_evictions: self.queue_evictions,
            slow_consumers: self.slow_consumers,
            offline_overflow: self.offline_overflow,
        }
    }

    /// Adds the totals a store kept from earlier runs.
    pub(crate) fn add_totals(&mut self, totals: &Totals) {
        self.clients_total += totals.clients_total;
        self.clients_maximum = self.clients_maximum.max(totals.clients_maximum);
        self.bytes_received += totals.bytes_received;
        self.bytes_sent += totals.bytes_sent;
        self.messages_received += totals.messages_received;
        self.messages_sent += totals.messages_sent;
        self.publish_received += totals.publish_received;
        self.publish_sent += totals.publish_sent;
        self.publish_dropped += totals.publish_dropped;
        self.publish_denied += totals.publish_denied;
        self.subscribe_denied += totals.subscribe_denied;
        self.queue_evictions += totals.queue_evictions;
        self.slow_consumers += totals.slow_consumers;
        self.offline_overflow += totals.offline_overflow;
    }

    /// Seconds since the broker started.
    #[must_use]
    pub fn uptime(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs()
    }

    pub(crate) fn client_connected(&mut self) {
        self.clients_connected += 1;
        self.clients_total += 1;
        self.clients_maximum = self.clients_maximum.max(self.clients_connected);
    }

    /// A client's link ended; `session_gone` when its session ended with it.
    pub(crate) fn client_disconnected(&mut self, session_gone: bool) {
        self.clients_connected = self.clients_connected.saturating_sub(1);
        if !session_gone {
            self.clients_disconnected += 1;
        }
    }

    /// A stored session's client came back.
    pub(crate) fn session_resumed(&mut self) {
        self.clients_disconnected = self.clients_disconnected.saturating_sub(1);
    }

    pub(crate) fn update_load(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_load_update).as_secs_f64();
        self.last_load_update = now;
        self.load_messages_received.update(self.messages_received, elapsed);
        self.load_messages_sent.update(self.messages_sent, elapsed);
        self.load_publish_received.update(self.publish_received, elapsed);
        self.load_publish_sent.update(self.publish_sent, elapsed);
        self.load_bytes_received.update(self.bytes_received, elapsed);
        self.load_bytes_sent.update(self.bytes_sent, elapsed);
    }

    /// The `$SYS/broker/...` topics and their values, as mosquitto names them.
    pub(crate) fn sys_topics(&self, now: Instant, unix_time: u64, version: &str) -> Vec<(String, String)> {
        let mut topics = vec![
            ("version".to_owned(), version.to_owned()),
            ("uptime".to_owned(), format!("{} seconds", self.uptime(now))),
            ("time".to_owned(), unix_time.to_string()),
        ];
        let counters = [
            ("clients/connected", self.clients_connected),
            ("clients/disconnected", self.clients_disconnected),
            ("clients/maximum", self.clients_maximum),
            ("clients/total", self.clients_total),
            ("bytes/received", self.bytes_received),
            ("bytes/sent", self.bytes_sent),
            ("messages/received", self.messages_received),
            ("messages/sent", self.messages_sent),
            ("publish/messages/received", self.publish_received),
            ("publish/messages/sent", self.publish_sent),
            ("publish/messages/dropped", self.publish_dropped),
            ("publish/messages/denied", self.publish_denied),
            ("subscribe/denied", self.subscribe_denied),
            ("messages/inflight", self.inflight),
            ("messages/stored", self.stored),
            ("retained messages/count", self.retained),
            ("subscriptions/count", self.subscriptions),
            ("clients/slow", self.slow_consumers),
        ];
        topics.extend(counters.iter().map(|(name, value)| ((*name).to_owned(), value.to_string())));
        for (name, load) in [
            ("messages/received", &self.load_messages_received),
            ("messages/sent", &self.load_messages_sent),
            ("publish/received", &self.load_publish_received),
            ("publish/sent", &self.load_publish_sent),
            ("bytes/received", &self.load_bytes_received),
            ("bytes/sent", &self.load_bytes_sent),
        ] {
            for (window, value) in [("1min", load.one), ("5min", load.five), ("15min", load.fifteen)] {
                topics.push((format!("load/{name}/{window}"), format!("{value:.2}")));
            }
        }
        for (topic, _) in &mut topics {
            topic.insert_str(0, "$SYS/broker/");
        }
        topics
    }
}
