"""Retained messages: stored, delivered to later subscriptions with RETAIN set, live copies without
it, and an empty retained message clears the topic.

usage: paho_retained.py HOST PORT
prints: RESULT first=<topic:payload:retain,...> live=... after_clear=...
"""

from paho_common import Client, broker_args, describe, fail, result


def short(messages):
    return ",".join(f"{m.topic}:{m.payload.decode()}:{int(m.retain)}" for m in messages) or "-"


host, port, _ = broker_args()

pub = Client(host, port, "ret-pub")
pub.connect()
pub.publish("ret/a", b"kept", qos=1, retain=True)

# A later subscription gets the retained message, RETAIN set, at min(message, subscription) QoS.
first = Client(host, port, "ret-first")
first.connect()
first.subscribe("ret/#", 1)
got = first.wait_messages(1)
if (got[0].topic, got[0].payload, got[0].retain, got[0].qos) != ("ret/a", b"kept", True, 1):
    fail(f"retained message delivered as {describe(got)}")

# A retained publish to an existing subscription is forwarded without RETAIN (MQTT-3.3.1-9).
pub.publish("ret/b", b"live", qos=1, retain=True)
got = first.wait_messages(2)
if (got[1].topic, got[1].payload, got[1].retain) != ("ret/b", b"live", False):
    fail(f"live retained message delivered as {describe(got[1:])}")

# An empty retained message clears ret/a; ret/b stays.
pub.publish("ret/a", b"", qos=1, retain=True)
first.wait_messages(3)
later = Client(host, port, "ret-later")
later.connect()
later.subscribe("ret/#", 1)
later.wait_messages(1)
after = later.settle(0.3)
if [(m.topic, m.payload, m.retain) for m in after] != [("ret/b", b"live", True)]:
    fail(f"after clearing ret/a a new subscription got {describe(after)}")

for c in (pub, first, later):
    c.disconnect()
result(first=short(first.messages[:1]), live=short(first.messages[1:2]), after_clear=short(after))
