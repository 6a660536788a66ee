"""An MQTT 5 client is refused promptly (CONNACK: unsupported protocol version), not left hanging.

usage: paho_v5_refused.py HOST PORT
prints: RESULT refused=1 reason=<reason code>
"""

import paho.mqtt.client as mqtt

from paho_common import Client, broker_args, fail, result

host, port, _ = broker_args()
v5 = Client(host, port, "v5-client", protocol=mqtt.MQTTv5)
v5.client.connect(host, port)
v5.client.loop_start()
v5.wait("CONNACK or disconnect", lambda: v5.connack is not None or v5.disconnects)
v5.client.loop_stop()
if v5.connack is None:
    fail(f"no CONNACK, only a disconnect: {v5.disconnects}")
rc, _ = v5.connack
if not rc.is_failure:
    fail(f"MQTT 5 connection accepted: {rc}")
result(refused=1, reason=str(rc).replace(" ", "_"))
