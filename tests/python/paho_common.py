"""Shared helpers of the paho-mqtt 2.x interop scripts.

Every script takes the broker's host and port as its first two arguments, prints one line
``RESULT key=value ...`` on success and exits 0; on failure it prints ``FAIL: <reason>`` to
stderr and exits 1. The Rust tests in tests/tests/interop_paho.rs run them.
"""

import socket
import sys
import threading
import time

import paho.mqtt.client as mqtt

TIMEOUT = 5.0


def fail(reason):
    print(f"FAIL: {reason}", file=sys.stderr, flush=True)
    sys.exit(1)


def result(**fields):
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


def broker_args(extra=0):
    if len(sys.argv) < 3 + extra:
        fail(f"usage: {sys.argv[0]} HOST PORT" + " ARG" * extra)
    return sys.argv[1], int(sys.argv[2]), sys.argv[3:]


class Client:
    """A paho client run by its network thread, with waits for CONNACK, SUBACK and messages."""

    def __init__(self, host, port, client_id, clean_session=True, will=None, manual_ack=False,
                 protocol=mqtt.MQTTv311, reconnect=False):
        self.host, self.port, self.name = host, port, client_id
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session if protocol != mqtt.MQTTv5 else None,
            protocol=protocol,
            manual_ack=manual_ack,
            # Otherwise paho's network thread reconnects on its own (and would take the session
            # back from whoever took it over).
            reconnect_on_failure=reconnect,
        )
        if will is not None:
            topic, payload, qos = will
            self.client.will_set(topic, payload, qos=qos)
        self.cond = threading.Condition()
        self.connack = None  # (reason code, session present)
        self.suback = {}
        self.messages = []
        self.disconnects = []
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        with self.cond:
            self.connack = (reason_code, flags.session_present)
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.cond:
            self.suback[mid] = reason_codes
            self.cond.notify_all()

    def _on_message(self, client, userdata, message):
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self.cond:
            self.disconnects.append(reason_code)
            self.cond.notify_all()

    def wait(self, what, predicate, timeout=TIMEOUT):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                fail(f"{self.name}: no {what} within {timeout}s")

    def connect(self, expect_session_present=None, keepalive=30):
        self.client.connect(self.host, self.port, keepalive=keepalive)
        self.client.loop_start()
        self.wait("CONNACK", lambda: self.connack is not None)
        rc, present = self.connack
        if rc.is_failure:
            fail(f"{self.name}: connection refused: {rc}")
        if expect_session_present is not None and present != expect_session_present:
            fail(f"{self.name}: session present is {present}, expected {expect_session_present}")
        return present

    def subscribe(self, topic, qos):
        rc, mid = self.client.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            fail(f"{self.name}: subscribe failed: {rc}")
        self.wait("SUBACK", lambda: mid in self.suback)
        granted = self.suback[mid][0]
        if granted.is_failure or granted.value != qos:
            fail(f"{self.name}: subscription to {topic} at QoS {qos} granted as {granted}")

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(TIMEOUT)
        if not info.is_published():
            fail(f"{self.name}: publish to {topic} (QoS {qos}) not completed within {TIMEOUT}s")

    def wait_messages(self, count, timeout=TIMEOUT):
        self.wait(f"{count} messages (got {len(self.messages)})", lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    def settle(self, seconds=0.3):
        """Gives stray messages a moment to arrive; returns all received so far."""
        time.sleep(seconds)
        with self.cond:
            return list(self.messages)

    def disconnect(self):
        """A clean DISCONNECT, then the network thread stops."""
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT, as a crash would (the kernel sends FIN)."""
        sock = self.client.socket()
        if sock is None:
            fail(f"{self.name}: no socket to drop")
        sock.shutdown(socket.SHUT_RDWR)
        self.wait("disconnect after dropping the socket", lambda: self.disconnects)
        self.client.loop_stop()


def describe(messages):
    return ",".join(f"{m.topic}:{m.payload.decode(errors='replace')}:q{m.qos}:r{int(m.retain)}:d{int(m.dup)}"
                    for m in messages)
