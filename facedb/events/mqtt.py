"""MQTT delivery through paho-mqtt (the ``events`` extra).

Each event is published at QoS 1 (the broker acknowledges it: at least once up to the broker) on
``<prefix>/<event type>``, its payload the event's JSON object. While a dispatcher is connected
its status is ``online`` on ``<prefix>/status/<instance>`` (retained), and ``offline`` when it
stops or, as the connection's last will, when it dies. With Home Assistant discovery on, each
person a ``visit.started`` names becomes a "last seen" timestamp sensor (retained discovery
config under ``homeassistant/sensor/...`` and its state on ``<prefix>/people/<id>/last_seen``).
"""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from facedb.errors import ConfigError
from facedb.events import DeliveryResult
from facedb.events.webhooks import body_of
from facedb.extras import load

__all__ = ["MqttSender", "MqttTarget", "parse_mqtt_url"]

_TOPIC = re.compile(r"^[^#+\x00]+$")


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """A broker and topic prefix, from ``mqtt://[user[:password]@]host[:port]/prefix``
    (``mqtts://`` for TLS, port 8883 by default)."""

    host: str
    port: int
    prefix: str
    tls: bool
    username: str | None
    password: str | None

    @property
    def url(self) -> str:
        """The target without its password (what is stored and shown)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.prefix}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """The broker and prefix of an MQTT subscription's URL (prefix default ``facedb``).

    Raises:
        ConfigError: not mqtt:// or mqtts:// with a host, or a prefix holding ``#``, ``+``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"not an MQTT URL: {url!r} ({e})") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"an MQTT target is mqtt://host[:port]/topic-prefix (or mqtts://), got {url!r}")
    prefix = parts.path.strip("/") or "facedb"
    if not _TOPIC.match(prefix) or len(prefix) > 200:
        raise ConfigError(f"an MQTT topic prefix may not hold '#', '+' or NUL, got {prefix!r}")
    tls = parts.scheme == "mqtts"
    return MqttTarget(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        prefix=prefix,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class MqttSender:
    """Publishes events to one broker under one prefix, as one process (``instance``)."""

    def __init__(
        self,
        target: MqttTarget,
        *,
        password: str | None,
        instance: str,
        timeout: float,
        home_assistant: bool = False,
        client_suffix: str = "",
        status: bool = True,
    ) -> None:
        self.target = target
        self.password = password
        self.instance = instance
        self.timeout = timeout
        self.home_assistant = home_assistant
        self.client_suffix = client_suffix
        #: Whether this connection has a status topic and last will (not for a test event).
        self.status = status
        self.status_topic = f"{target.prefix}/status/{instance}"
        self._client: Any = None
        self._connected = threading.Event()
        self._announced: set[int] = set()

    # -- the connection --------------------------------------------------------------------

    def _connect(self) -> None:
        mqtt = load("paho.mqtt.client", "events", "MQTT events")
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"facedb-{self.instance}-{os.getpid()}{self.client_suffix}"[:200],
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if self.target.username:
            client.username_pw_set(self.target.username, self.password)
        if self.target.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        if self.status:
            client.will_set(self.status_topic, "offline", qos=1, retain=True)
        connected = self._connected
        connected.clear()

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if not reason.is_failure:
                if self.status:
                    c.publish(self.status_topic, "online", qos=1, retain=True)
                connected.set()

        def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            connected.clear()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.connect(self.target.host, self.target.port, keepalive=30)
        client.loop_start()
        if not connected.wait(self.timeout):
            client.loop_stop()
            client.disconnect()
            raise ConnectionError(
                f"no CONNACK from {self.target.host}:{self.target.port} within {self.timeout} s"
            )
        self._client = client

    def _drop(self) -> None:
        """Forgets a connection that failed (a fresh one next time: nothing stale queued)."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            finally:
                client.loop_stop()

    def close(self) -> None:
        """Publishes ``offline`` (retained) and disconnects."""
        client = self._client
        if client is None:
            return
        try:
            if self._connected.is_set() and self.status:
                client.publish(self.status_topic, "offline", qos=1, retain=True).wait_for_publish(
                    self.timeout
                )
        except (RuntimeError, ValueError, OSError):
            pass
        self._drop()

    # -- publishing ------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes | str, retain: bool = False) -> Any:
        return self._client.publish(topic, payload, qos=1, retain=retain)

    def _discovery(self, event: dict[str, Any]) -> list[Any]:
        """Home Assistant discovery for the person a visit names (once per connection), and
        their "last seen" state."""
        person = event.get("data", {}).get("person")
        if event.get("type") != "visit.started" or not isinstance(person, dict):
            return []
        person_id = int(person["id"])
        gallery = str(event["data"].get("gallery", ""))[:8] or "gallery"
        state_topic = f"{self.target.prefix}/people/{person_id}/last_seen"
        sent = []
        if person_id not in self._announced:
            config = {
                "name": f"{person.get('name', person_id)} last seen",
                "unique_id": f"facedb_{gallery}_person_{person_id}_last_seen",
                "object_id": f"facedb_person_{person_id}_last_seen",
                "state_topic": state_topic,
                "device_class": "timestamp",
                "icon": "mdi:face-recognition",
                "device": {
                    "identifiers": [f"facedb_{gallery}"],
                    "name": f"facedb {gallery}",
                    "manufacturer": "facedb",
                },
            }
            topic = f"homeassistant/sensor/facedb_{gallery}/person_{person_id}/config"
            sent.append(self._publish(topic, json.dumps(config), retain=True))
            self._announced.add(person_id)
        when = str(event["timestamp"]).replace("Z", "+00:00")
        sent.append(self._publish(state_topic, when, retain=True))
        return sent

    def post(self, event: dict[str, Any]) -> DeliveryResult:
        """Publishes one event and waits for its acknowledgement."""
        started = time.monotonic()
        delivered, error = self.send([event])
        return DeliveryResult(
            delivered == 1,
            None,
            error or "PUBACK received",
            time.monotonic() - started,
            str(event["id"]),
        )

    def send(self, events: Sequence[dict[str, Any]]) -> tuple[int, str | None]:
        """Publishes events in order (QoS 1) and waits for their acknowledgements: (how many
        the broker acknowledged before the first that it did not, the failure)."""
        try:
            if self._client is None or not self._connected.is_set():
                self._drop()
                self._connect()
            pending = []
            for event in events:
                extra = self._discovery(event) if self.home_assistant else []
                pending.append(
                    (extra, self._publish(f"{self.target.prefix}/{event['type']}", body_of(event)))
                )
            deadline = time.monotonic() + self.timeout
            for n, (extra, info) in enumerate(pending):
                for message in [*extra, info]:
                    message.wait_for_publish(max(0.0, deadline - time.monotonic()))
                    if not message.is_published():
                        self._drop()
                        return (
                            n,
                            f"no PUBACK from {self.target.host}:{self.target.port} within {self.timeout} s",
                        )
            return len(events), None
        except (OSError, RuntimeError, ValueError, ConnectionError) as e:
            self._drop()
            return 0, f"{type(e).__name__}: {e}"[:500]
