"""Wills: published when a client's connection closes without DISCONNECT (socket shut down
in-process, or a subprocess that exits without disconnecting), not after a clean DISCONNECT.

usage: paho_will.py HOST PORT
       paho_will.py HOST PORT victim TOPIC PAYLOAD   (connects with a will, prints READY, exits
                                                      with os._exit without DISCONNECT)
prints: RESULT wills=<payload,...>
"""

import os
import subprocess
import sys

from paho_common import Client, TIMEOUT, broker_args, describe, fail, result

host, port, args = broker_args()

if args[:1] == ["victim"]:
    topic, payload = args[1], args[2]
    victim = Client(host, port, "will-victim-process", will=(topic, payload, 1))
    victim.connect(keepalive=5)
    print("READY", flush=True)
    os._exit(0)

watcher = Client(host, port, "will-watcher")
watcher.connect()
watcher.subscribe("will/#", 1)

# A clean DISCONNECT discards the will.
clean = Client(host, port, "will-clean", will=("will/clean", b"clean", 1))
clean.connect(keepalive=5)
clean.disconnect()

# The socket closed under the client: the will goes out.
dropped = Client(host, port, "will-dropped", will=("will/dropped", b"dropped", 1))
dropped.connect(keepalive=5)
dropped.drop()
watcher.wait_messages(1)

# A process that dies without DISCONNECT: the kernel closes its socket.
child = subprocess.run(
    [sys.executable, "-u", os.path.abspath(__file__), host, str(port), "victim", "will/exited", "exited"],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, text=True,
)
if child.returncode != 0 or "READY" not in child.stdout:
    fail(f"victim process failed ({child.returncode}): {child.stdout} {child.stderr}")
watcher.wait_messages(2)

got = watcher.settle(0.3)
if [(m.topic, m.payload) for m in got] != [("will/dropped", b"dropped"), ("will/exited", b"exited")]:
    fail(f"expected the wills of the dropped and exited clients only, got {describe(got)}")
if any(m.qos != 1 or m.retain for m in got):
    fail(f"wills delivered with the wrong QoS or RETAIN: {describe(got)}")
watcher.disconnect()
result(wills=",".join(m.payload.decode() for m in got))
