"""Session takeover: a second client with the same id disconnects the first (its on_disconnect
fires), and only the second receives what follows.

usage: paho_takeover.py HOST PORT
prints: RESULT first_disconnected=1 first_reason=<rc> second_got=<payload> first_got=<n>
"""

from paho_common import Client, broker_args, describe, fail, result

host, port, _ = broker_args()

first = Client(host, port, "same-id")
first.connect()
first.subscribe("take/t", 1)

second = Client(host, port, "same-id")
second.connect()
second.subscribe("take/t", 1)
first.wait("on_disconnect after the takeover", lambda: first.disconnects)
reason = first.disconnects[0]
if not reason.is_failure:
    fail(f"the first client's disconnect looks clean: {reason}")

pub = Client(host, port, "take-pub")
pub.connect()
pub.publish("take/t", b"after", qos=1)
got = second.wait_messages(1)
got = second.settle(0.3)
if [m.payload for m in got] != [b"after"]:
    fail(f"the second client got {describe(got)}")
if first.messages:
    fail(f"the first client still got messages: {describe(first.messages)}")
if second.disconnects:
    fail(f"the second client was disconnected too: {second.disconnects}")
first.client.loop_stop()
second.disconnect()
pub.disconnect()
result(first_disconnected=len(first.disconnects), first_reason=str(reason).replace(" ", "_"),
       second_got=got[0].payload.decode(), first_got=len(first.messages))
