//! How a store writes what it keeps: each record is an MQTT 5 packet.
//!
//! A message is the PUBLISH that carries it (QoS, RETAIN, topic, properties, payload), a session
//! is a CONNECT (level, client id, user name; no password, no will), a subscription is a
//! SUBSCRIBE with its one filter. Reading a record back runs the same decoder that checks
//! packets from the network, so a damaged record is an error that says what is wrong.

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::OutState;
use crate::broker::Message;
use crate::codec::{
    Connect, Decoder, Packet, PacketId, Properties, ProtocolLevel, Publish, QoS, Subscribe, SubscriptionOptions, encode,
};
use crate::topic::TopicFilter;

/// The packet id written into stored PUBLISH and SUBSCRIBE records, which need one; the real
/// id of a message in flight is kept beside it ([`encode_inflight`]).
const PLACEHOLDER_ID: PacketId = PacketId::MIN;

/// A message as delivered with `qos` and `retain`.
#[must_use]
pub fn encode_message(qos: QoS, retain: bool, message: &Message) -> Vec<u8> {
    let publish = Publish {
        dup: false,
        qos,
        retain,
        topic: message.topic.clone(),
        packet_id: (qos != QoS::AtMostOnce).then_some(PLACEHOLDER_ID),
        properties: message.properties.clone(),
        payload: message.payload.clone(),
    };
    encode_packet(&Packet::Publish(publish), ProtocolLevel::V5)
}

/// The message, QoS and RETAIN flag of a record from [`encode_message`]. The message's own QoS
/// and RETAIN are those it is delivered with.
///
/// # Errors
/// What is wrong with the record.
pub fn decode_message(record: &[u8]) -> Result<Message, String> {
    match decode_packet(record, ProtocolLevel::V5)? {
        Packet::Publish(publish) => Ok(Message::from_publish(publish)),
        other => Err(format!("a message record holds {:?}, not PUBLISH", other.packet_type())),
    }
}

/// A session's level and user name, as a CONNECT.
#[must_use]
pub fn encode_session(client_id: &ByteString, level: ProtocolLevel, username: Option<&ByteString>) -> Vec<u8> {
    let connect = Connect {
        level,
        clean_start: false,
        keep_alive: 0,
        client_id: client_id.clone(),
        will: None,
        username: username.cloned(),
        password: None,
        properties: Properties::new(),
    };
    encode_packet(&Packet::Connect(connect), level)
}

/// The client id, level and user name of a record from [`encode_session`].
///
/// # Errors
/// What is wrong with the record.
pub fn decode_session(record: &[u8]) -> Result<(ByteString, ProtocolLevel, Option<ByteString>), String> {
    // The level is whatever the CONNECT announces; the decoder's own level does not matter.
    match decode_packet(record, ProtocolLevel::V3_1_1)? {
        Packet::Connect(connect) => Ok((connect.client_id, connect.level, connect.username)),
        other => Err(format!("a session record holds {:?}, not CONNECT", other.packet_type())),
    }
}

/// One subscription, as a SUBSCRIBE with one filter.
#[must_use]
pub fn encode_subscription(filter: &TopicFilter, options: SubscriptionOptions) -> Vec<u8> {
    let subscribe = Subscribe {
        packet_id: PLACEHOLDER_ID,
        filters: vec![(filter.clone(), options)],
        properties: Properties::new(),
    };
    encode_packet(&Packet::Subscribe(subscribe), ProtocolLevel::V5)
}

/// The filter and options of a record from [`encode_subscription`].
///
/// # Errors
/// What is wrong with the record.
pub fn decode_subscription(record: &[u8]) -> Result<(TopicFilter, SubscriptionOptions), String> {
    match decode_packet(record, ProtocolLevel::V5)? {
        Packet::Subscribe(subscribe) if subscribe.filters.len() == 1 => {
            let (filter, options) = subscribe.filters.into_iter().next().ok_or("no filter")?;
            // Stored for a long time: not a slice of the record's buffer.
            Ok((filter.detached(), options))
        }
        Packet::Subscribe(subscribe) => {
            Err(format!("a subscription record holds {} filters, not one", subscribe.filters.len()))
        }
        other => Err(format!("a subscription record holds {:?}, not SUBSCRIBE", other.packet_type())),
    }
}

/// The packet id and state of a message in flight: three bytes.
#[must_use]
pub fn encode_inflight(packet_id: PacketId, state: OutState) -> [u8; 3] {
    let [hi, lo] = packet_id.get().to_be_bytes();
    [hi, lo, state.to_u8()]
}

/// The packet id and state of a record from [`encode_inflight`].
///
/// # Errors
/// What is wrong with the record.
pub fn decode_inflight(record: &[u8]) -> Result<(PacketId, OutState), String> {
    let &[hi, lo, state] = record else {
        return Err(format!("an in-flight record has {} bytes, not 3", record.len()));
    };
    let packet_id = PacketId::new(u16::from_be_bytes([hi, lo])).ok_or("an in-flight record has packet id 0")?;
    let state = OutState::from_u8(state).ok_or_else(|| format!("an in-flight record has state {state}"))?;
    Ok((packet_id, state))
}

fn encode_packet(packet: &Packet, level: ProtocolLevel) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(error) = encode(packet, level, &mut out) {
        // Everything stored was decoded from a client or built by the broker, within MQTT's
        // limits; a failure here is a bug, and the record is written empty (and refused when
        // read back) rather than taking the broker down.
        debug_assert!(false, "cannot encode a store record: {error}");
        out.clear();
    }
    out
}

fn decode_packet(record: &[u8], level: ProtocolLevel) -> Result<Packet, String> {
    let mut buf = BytesMut::from(Bytes::copy_from_slice(record));
    let decoder = Decoder::new(level).with_max_packet_size(usize::MAX);
    match decoder.decode(&mut buf) {
        Ok(Some(packet)) if buf.is_empty() => Ok(packet),
        Ok(Some(_)) => Err(format!("{} bytes after the record", buf.len())),
        Ok(None) => Err(format!("a record of {} bytes is cut short", record.len())),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Property, RetainHandling};
    use crate::topic::TopicName;

    #[test]
    fn records_read_back_as_written() {
        let message = Message {
            topic: TopicName::new("a/b").unwrap(),
            payload: Bytes::from_static(b"hello"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties::new().with(Property::ContentType("text/plain".into())),
        };
        let back = decode_message(&encode_message(QoS::ExactlyOnce, true, &message)).unwrap();
        assert_eq!(back, message);
        let qos0 = Message { qos: QoS::AtMostOnce, retain: false, properties: Properties::new(), ..message };
        assert_eq!(decode_message(&encode_message(QoS::AtMostOnce, false, &qos0)).unwrap(), qos0);

        let id = ByteString::from("client-1");
        let user = ByteString::from("ann");
        for level in [ProtocolLevel::V3_1, ProtocolLevel::V3_1_1, ProtocolLevel::V5] {
            let record = encode_session(&id, level, Some(&user));
            assert_eq!(decode_session(&record).unwrap(), (id.clone(), level, Some(user.clone())));
        }
        assert_eq!(decode_session(&encode_session(&id, ProtocolLevel::V3_1_1, None)).unwrap().2, None);

        let filter = TopicFilter::new("$share/g/a/+/#").unwrap();
        let options = SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            // (no-local is refused on shared subscriptions)
            no_local: false,
            retain_as_published: true,
            retain_handling: RetainHandling::DoNotSend,
        };
        assert_eq!(decode_subscription(&encode_subscription(&filter, options)).unwrap(), (filter, options));
        let filter = TopicFilter::new("a/#").unwrap();
        let options = SubscriptionOptions { no_local: true, ..options };
        assert_eq!(decode_subscription(&encode_subscription(&filter, options)).unwrap(), (filter, options));

        let packet_id = PacketId::new(513).unwrap();
        assert_eq!(
            decode_inflight(&encode_inflight(packet_id, OutState::Pubcomp)).unwrap(),
            (packet_id, OutState::Pubcomp)
        );
    }

    #[test]
    fn damaged_records_are_errors() {
        let message = Message {
            topic: TopicName::new("a").unwrap(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::new(),
        };
        let record = encode_message(QoS::AtLeastOnce, false, &message);
        assert!(decode_message(&record[..record.len() - 1]).unwrap_err().contains("cut short"));
        let mut longer = record.clone();
        longer.push(0);
        assert!(decode_message(&longer).is_err());
        assert!(decode_message(&[0xff, 0x00]).is_err());
        assert!(decode_message(&[]).is_err());
        let session = encode_session(&"c".into(), ProtocolLevel::V3_1_1, None);
        assert!(decode_message(&session).unwrap_err().contains("not PUBLISH"));
        assert!(decode_session(&record).is_err());
        assert!(decode_subscription(&record).is_err());
        assert!(decode_inflight(&[0, 0, 1]).is_err());
        assert!(decode_inflight(&[0, 1, 9]).is_err());
        assert!(decode_inflight(&[0, 1]).is_err());
    }
}
