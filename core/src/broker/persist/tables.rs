//! The layout every key-value back end shares: which table each [`StoreOp`] touches, under which
//! key, with which record; and how a [`Snapshot`] is read back from those tables.
//!
//! Keys are bytes that sort as the router needs: a session's entries start with its client id
//! and a 0 byte (MQTT strings never hold U+0000, MQTT-1.5.4-2), then the filter, the message
//! number or the packet id, big-endian. So a session's messages come back in queue order, and
//! all of a session is one key range.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytestring::ByteString;

use super::record::{
    decode_inflight, decode_message, decode_session, decode_subscription, encode_inflight, encode_message,
    encode_session, encode_subscription,
};
use super::{Snapshot, StoreOp, StoredMessage, StoredSession, Totals};
use crate::codec::{PacketId, QoS};

/// The tables of a key-value store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Topic -> PUBLISH record.
    Retained,
    /// Client id -> CONNECT record.
    Sessions,
    /// Client id, 0, filter -> SUBSCRIBE record.
    Subscriptions,
    /// Client id, 0, message number -> PUBLISH record.
    Messages,
    /// Client id, 0, message number -> packet id and state of a message in flight.
    Inflight,
    /// Client id, 0, packet id -> nothing: incoming QoS 2 ids not yet released.
    Qos2,
    /// Counter name -> value, 8 bytes big-endian.
    Totals,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Self; 7] =
        [Self::Retained, Self::Sessions, Self::Subscriptions, Self::Messages, Self::Inflight, Self::Qos2, Self::Totals];

    /// The tables that hold entries of one session under its key range.
    const PER_SESSION: [Self; 4] = [Self::Subscriptions, Self::Messages, Self::Inflight, Self::Qos2];

    /// Its name in a store.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Retained => "retained",
            Self::Sessions => "sessions",
            Self::Subscriptions => "subscriptions",
            Self::Messages => "messages",
            Self::Inflight => "inflight",
            Self::Qos2 => "qos2",
            Self::Totals => "totals",
        }
    }
}

/// What a key-value back end offers, inside one transaction.
pub trait TableWriter {
    /// The back end's error.
    type Error;
    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// The back end's.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Self::Error>;
    /// Removes `key`, if present.
    ///
    /// # Errors
    /// The back end's.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), Self::Error>;
    /// Removes every key `k` with `from <= k < to`.
    ///
    /// # Errors
    /// The back end's.
    fn delete_range(&mut self, table: Table, from: &[u8], to: &[u8]) -> Result<(), Self::Error>;
}

/// Applies `ops` in order to `writer`.
///
/// A message queued and done within the same `ops` is never written: with batches a few
/// milliseconds long, most messages to a subscriber that keeps up cost the store nothing.
///
/// # Errors
/// The first error of the back end.
pub fn apply<W: TableWriter>(writer: &mut W, ops: &[StoreOp]) -> Result<(), W::Error> {
    let short_lived = short_lived_messages(ops);
    for op in ops {
        match op {
            StoreOp::Retain(message) => {
                writer.put(
                    Table::Retained,
                    message.topic.as_str().as_bytes(),
                    &encode_message(message.qos, true, message),
                )?;
            }
            StoreOp::Unretain(topic) => writer.delete(Table::Retained, topic.as_str().as_bytes())?,
            StoreOp::Session { client_id, level, username } => {
                writer.put(
                    Table::Sessions,
                    client_id.as_bytes(),
                    &encode_session(client_id, *level, username.as_ref()),
                )?;
            }
            StoreOp::DropSession { client_id } => {
                writer.delete(Table::Sessions, client_id.as_bytes())?;
                let (from, to) = session_range(client_id);
                for table in Table::PER_SESSION {
                    writer.delete_range(table, &from, &to)?;
                }
            }
            StoreOp::Subscribe { client_id, filter, options } => {
                let key = session_key(client_id, filter.as_str().as_bytes());
                writer.put(Table::Subscriptions, &key, &encode_subscription(filter, *options))?;
            }
            StoreOp::Unsubscribe { client_id, filter } => {
                writer.delete(Table::Subscriptions, &session_key(client_id, filter.as_str().as_bytes()))?;
            }
            StoreOp::Queue { client_id, seq, qos, retain, message } => {
                if !short_lived.contains(&(client_id, *seq)) {
                    writer.put(
                        Table::Messages,
                        &message_key(client_id, *seq),
                        &encode_message(*qos, *retain, message),
                    )?;
                }
            }
            StoreOp::Inflight { client_id, seq, packet_id, state } => {
                if !short_lived.contains(&(client_id, *seq)) {
                    writer.put(Table::Inflight, &message_key(client_id, *seq), &encode_inflight(*packet_id, *state))?;
                }
            }
            StoreOp::Unqueue { client_id, seq } => {
                if !short_lived.contains(&(client_id, *seq)) {
                    let key = message_key(client_id, *seq);
                    writer.delete(Table::Messages, &key)?;
                    writer.delete(Table::Inflight, &key)?;
                }
            }
            StoreOp::Qos2Received { client_id, packet_id } => {
                writer.put(Table::Qos2, &qos2_key(client_id, *packet_id), &[])?;
            }
            StoreOp::Qos2Released { client_id, packet_id } => {
                writer.delete(Table::Qos2, &qos2_key(client_id, *packet_id))?;
            }
            StoreOp::Totals(totals) => {
                for (name, value) in totals.fields() {
                    writer.put(Table::Totals, name.as_bytes(), &value.to_be_bytes())?;
                }
            }
        }
    }
    Ok(())
}

/// Messages both queued and done within `ops`.
fn short_lived_messages(ops: &[StoreOp]) -> HashSet<(&ByteString, u64)> {
    let mut queued = HashSet::new();
    let mut done = HashSet::new();
    for op in ops {
        match op {
            StoreOp::Queue { client_id, seq, .. } => {
                queued.insert((client_id, *seq));
            }
            StoreOp::Unqueue { client_id, seq } if queued.contains(&(client_id, *seq)) => {
                done.insert((client_id, *seq));
            }
            _ => {}
        }
    }
    done
}

/// Reads a whole store: `scan(table, f)` calls `f` with every key and value of `table`, in key
/// order, and stops at the first error `f` returns.
///
/// # Errors
/// The back end's error, or `corrupt(reason)` for a record that cannot be read back.
pub fn load<E>(
    mut scan: impl FnMut(Table, &mut dyn FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<(), E>,
    corrupt: impl Fn(String) -> E,
) -> Result<Snapshot, E> {
    let mut snapshot = Snapshot::default();
    scan(Table::Retained, &mut |key, value| {
        let mut message = decode_message(value).map_err(|e| corrupt(format!("retained {}: {e}", show(key))))?;
        message.retain = true;
        message.topic = message.topic.detached();
        snapshot.retained.push(message);
        Ok(())
    })?;
    let mut sessions: BTreeMap<Vec<u8>, StoredSession> = BTreeMap::new();
    scan(Table::Sessions, &mut |key, value| {
        let (client_id, level, username) =
            decode_session(value).map_err(|e| corrupt(format!("session {}: {e}", show(key))))?;
        if client_id.as_bytes() != key {
            return Err(corrupt(format!("session {} holds the record of {client_id:?}", show(key))));
        }
        sessions.insert(key.to_vec(), StoredSession::new(client_id, level, username));
        Ok(())
    })?;
    let mut inflight = HashMap::new();
    scan(Table::Inflight, &mut |key, value| {
        let what = || format!("in-flight record {}", show(key));
        let (client, seq) = split_message_key(key).ok_or_else(|| corrupt(format!("{}: bad key", what())))?;
        let state = decode_inflight(value).map_err(|e| corrupt(format!("{}: {e}", what())))?;
        inflight.insert((client.to_vec(), seq), state);
        Ok(())
    })?;
    scan(Table::Subscriptions, &mut |key, value| {
        let (client, _) =
            split_session_key(key).ok_or_else(|| corrupt(format!("subscription {}: bad key", show(key))))?;
        let (filter, options) =
            decode_subscription(value).map_err(|e| corrupt(format!("subscription {}: {e}", show(key))))?;
        let session = sessions.get_mut(client).ok_or_else(|| orphan(&corrupt, "a subscription", client))?;
        session.subscriptions.push((filter, options));
        Ok(())
    })?;
    scan(Table::Messages, &mut |key, value| {
        let (client, seq) = split_message_key(key).ok_or_else(|| corrupt(format!("message {}: bad key", show(key))))?;
        let mut message = decode_message(value).map_err(|e| corrupt(format!("message {}: {e}", show(key))))?;
        let session = sessions.get_mut(client).ok_or_else(|| orphan(&corrupt, "a message", client))?;
        let (qos, retain) = (message.qos, message.retain);
        if qos == QoS::AtMostOnce {
            return Err(corrupt(format!("message {} has QoS 0, which is never stored", show(key))));
        }
        message.topic = message.topic.detached();
        let state = inflight.remove(&(client.to_vec(), seq));
        session.messages.push(StoredMessage { seq, qos, retain, message, inflight: state });
        Ok(())
    })?;
    if let Some(((client, seq), _)) = inflight.into_iter().next() {
        return Err(corrupt(format!("an in-flight record of {} #{seq} has no message", show(&client))));
    }
    scan(Table::Qos2, &mut |key, _| {
        let bad = || corrupt(format!("QoS 2 id {}: bad key", show(key)));
        let (client, rest) = split_session_key(key).ok_or_else(bad)?;
        let id = <[u8; 2]>::try_from(rest).ok().and_then(|b| PacketId::new(u16::from_be_bytes(b))).ok_or_else(bad)?;
        let session = sessions.get_mut(client).ok_or_else(|| orphan(&corrupt, "a QoS 2 id", client))?;
        session.qos2_received.push(id);
        Ok(())
    })?;
    let mut totals = Totals::default();
    scan(Table::Totals, &mut |key, value| {
        let name = std::str::from_utf8(key).map_err(|_| corrupt(format!("counter {}: bad name", show(key))))?;
        let value = <[u8; 8]>::try_from(value).map_err(|_| corrupt(format!("counter {name}: not 8 bytes")))?;
        totals.set(name, u64::from_be_bytes(value));
        Ok(())
    })?;
    snapshot.totals = totals;
    snapshot.sessions = sessions.into_values().collect();
    Ok(snapshot)
}

fn orphan<E>(corrupt: &impl Fn(String) -> E, what: &str, client: &[u8]) -> E {
    // Entries are written after their session's record and removed with it, in one transaction.
    corrupt(format!("{what} of {}, which has no session record", show(client)))
}

/// A key for log lines: text where it is text.
fn show(key: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(key))
}

fn session_key(client_id: &ByteString, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(client_id.len() + 1 + rest.len());
    key.extend_from_slice(client_id.as_bytes());
    key.push(0);
    key.extend_from_slice(rest);
    key
}

fn message_key(client_id: &ByteString, seq: u64) -> Vec<u8> {
    session_key(client_id, &seq.to_be_bytes())
}

fn qos2_key(client_id: &ByteString, packet_id: PacketId) -> Vec<u8> {
    session_key(client_id, &packet_id.get().to_be_bytes())
}

/// All keys of one session: from `client, 0` up to (not including) `client, 1`.
fn session_range(client_id: &ByteString) -> (Vec<u8>, Vec<u8>) {
    (session_key(client_id, &[]), [client_id.as_bytes().as_ref(), &[1u8]].concat())
}

fn split_session_key(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let zero = key.iter().position(|&b| b == 0)?;
    Some((&key[..zero], &key[zero + 1..]))
}

fn split_message_key(key: &[u8]) -> Option<(&[u8], u64)> {
    let (client, rest) = split_session_key(key)?;
    Some((client, u64::from_be_bytes(rest.try_into().ok()?)))
}
