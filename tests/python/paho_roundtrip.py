"""QoS round trip: COUNT messages published at PUB_QOS reach a subscriber at SUB_QOS.

usage: paho_roundtrip.py HOST PORT PUB_QOS SUB_QOS COUNT
prints: RESULT received=N qos=Q in_order=1
"""

from paho_common import Client, broker_args, describe, fail, result

host, port, args = broker_args(3)
pub_qos, sub_qos, count = (int(a) for a in args[:3])

sub = Client(host, port, "rt-sub")
sub.connect(expect_session_present=False)
sub.subscribe("rt/#", sub_qos)

pub = Client(host, port, "rt-pub")
pub.connect()
sent = [(f"rt/{i % 3}", f"msg-{i}".encode()) for i in range(count)]
for topic, payload in sent:
    pub.publish(topic, payload, qos=pub_qos)

got = sub.wait_messages(count)
got = sub.settle(0.2)
expected_qos = min(pub_qos, sub_qos)
if len(got) != count:
    fail(f"expected {count} messages, got {len(got)}: {describe(got)}")
if [(m.topic, m.payload) for m in got] != sent:
    fail(f"messages differ from those sent (or arrived out of order): {describe(got)}")
bad = [m for m in got if m.qos != expected_qos or m.retain or m.dup]
if bad:
    fail(f"expected QoS {expected_qos}, no RETAIN, no DUP: {describe(bad)}")
pub.disconnect()
sub.disconnect()
result(received=len(got), qos=",".join(sorted({str(m.qos) for m in got})), in_order=1)
