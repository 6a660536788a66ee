"""MQTT over WebSocket with paho: a subscriber and a publisher, both with
transport="websockets", make a QoS 0, 1 and 2 round trip through the broker.

usage: paho_ws.py HOST PORT PATH [CAFILE]   (with CAFILE: wss, the broker's name checked)
prints: RESULT received=3 transport=ws|wss
"""

import ssl
import threading

import paho.mqtt.client as mqtt

from paho_common import TIMEOUT, broker_args, fail, result

host, port, args = broker_args(1)
path = args[0]
cafile = args[1] if len(args) > 1 else None


class WsClient:
    def __init__(self, client_id):
        self.cond = threading.Condition()
        self.connected = None
        self.subscribed = False
        self.messages = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  transport="websockets", protocol=mqtt.MQTTv311)
        self.client.ws_set_options(path=path)
        if cafile:
            self.client.tls_set(ca_certs=cafile, cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason, properties):
        with self.cond:
            self.connected = reason
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, properties):
        with self.cond:
            self.subscribed = True
            self.cond.notify_all()

    def _on_message(self, client, userdata, message):
        with self.cond:
            self.messages.append((message.topic, message.payload, message.qos))
            self.cond.notify_all()

    def wait(self, what, predicate):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout=TIMEOUT):
                fail(f"{what} did not happen within {TIMEOUT}s")

    def connect(self):
        try:
            self.client.connect(host, port, keepalive=30)
        except Exception as e:  # noqa: BLE001 - any failure to connect fails the test
            fail(f"connect over WebSocket: {e!r}")
        self.client.loop_start()
        self.wait("CONNACK", lambda: self.connected is not None)
        if self.connected != 0:
            fail(f"refused: {self.connected}")


sub = WsClient("ws-sub")
sub.connect()
sub.client.subscribe("ws/#", qos=2)
sub.wait("SUBACK", lambda: sub.subscribed)
pub = WsClient("ws-pub")
pub.connect()
sent = [(f"ws/{q}", f"over websocket {q}".encode(), q) for q in (0, 1, 2)]
for topic, payload, qos in sent:
    pub.client.publish(topic, payload, qos=qos).wait_for_publish(TIMEOUT)
sub.wait("3 messages", lambda: len(sub.messages) >= 3)
if sub.messages != sent:
    fail(f"expected {sent}, got {sub.messages}")
for c in (pub, sub):
    c.client.disconnect()
    c.client.loop_stop()
result(received=len(sub.messages), transport="wss" if cafile else "ws")
