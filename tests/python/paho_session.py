"""Persistent session (clean_session=False) with QoS 1: messages published while the client is
away are queued, and messages delivered but not acknowledged before the connection dropped are
sent again (DUP set) on reconnection, before the newer ones.

usage: paho_session.py HOST PORT
prints: RESULT queued=N resent=N total=N
"""

from paho_common import Client, broker_args, describe, fail, result

host, port, _ = broker_args()
ID = "sess-client"

pub = Client(host, port, "sess-pub")
pub.connect()

# 1. Subscribe in a persistent session, then leave cleanly.
first = Client(host, port, ID, clean_session=False)
first.connect(expect_session_present=False)
first.subscribe("sess/t", 1)
first.disconnect()

# 2. Published while away: queued.
for i in range(3):
    pub.publish("sess/t", f"away-{i}".encode(), qos=1)

# 3. Back (session present); take the queued messages but acknowledge none, then crash.
second = Client(host, port, ID, clean_session=False, manual_ack=True)
second.connect(expect_session_present=True)
got = second.wait_messages(3)
got = second.settle(0.2)
if [m.payload for m in got] != [b"away-0", b"away-1", b"away-2"] or any(m.qos != 1 for m in got):
    fail(f"queued messages delivered as {describe(got)}")
second.drop()

# 4. More while away again.
for i in range(2):
    pub.publish("sess/t", f"later-{i}".encode(), qos=1)

# 5. Back again: the three unacknowledged ones again (DUP), then the two new ones.
third = Client(host, port, ID, clean_session=False)
third.connect(expect_session_present=True)
got = third.wait_messages(5)
got = third.settle(0.3)
expected = [b"away-0", b"away-1", b"away-2", b"later-0", b"later-1"]
if [m.payload for m in got] != expected:
    fail(f"after reconnecting expected {expected}, got {describe(got)}")
if [m.dup for m in got] != [True, True, True, False, False]:
    fail(f"DUP should be set on the resent messages only: {describe(got)}")
if any(m.qos != 1 for m in got):
    fail(f"expected QoS 1: {describe(got)}")
third.disconnect()

# 6. All acknowledged: nothing is sent again.
fourth = Client(host, port, ID, clean_session=False)
fourth.connect(expect_session_present=True)
extra = fourth.settle(0.3)
if extra:
    fail(f"acknowledged messages sent again: {describe(extra)}")
fourth.disconnect()
pub.disconnect()
result(queued=3, resent=sum(m.dup for m in got), total=len(got))
