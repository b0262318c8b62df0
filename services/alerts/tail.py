"""Following the spike-alerts topic: the alerts as they come, one readable line each.

The broker's "latest offset" is not reliable (tansu counts batches, not records), so "from now on"
is done by reading the topic from the beginning without printing until it has been quiet for a
moment (`catch_up_idle_s`), then printing what arrives. Alerts are rare, so the catch-up is short.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from services.alerts.payloads import per_interval, rfc3339, share_text


def follow_alerts(kafka: dict, topic: str, from_beginning: bool, stop: threading.Event,
                  catch_up_idle_s: float = 1.0, group: str = "fyp-alerts-tail",
                  caught_up_event: threading.Event | None = None) -> Iterator[bytes]:
    """Yields the raw value of each alert on `topic` (all of them with `from_beginning`, else those
    arriving after the catch-up) until `stop` is set. `caught_up_event` is set once what arrives
    is yielded."""
    c = Consumer({**kafka, "group.id": group, "enable.auto.commit": False,
                  "fetch.wait.max.ms": 100})
    try:
        meta = c.list_topics(topic, timeout=30)
        parts = sorted(meta.topics[topic].partitions) if topic in meta.topics else []
        if not parts:
            raise SystemExit(f"topic {topic!r} not found (is the broker up and the alerter set up?)")
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        caught_up, last = from_beginning, time.monotonic()
        if caught_up and caught_up_event is not None:
            caught_up_event.set()
        while not stop.is_set():
            msgs = [m for m in c.consume(100, 0.2) if not m.error()]
            if not caught_up:
                if msgs:
                    last = time.monotonic()
                elif time.monotonic() - last >= catch_up_idle_s:
                    caught_up = True
                    if caught_up_event is not None:
                        caught_up_event.set()
                continue
            for m in msgs:
                yield m.value()
    finally:
        c.close()


def alert_line(alert: dict) -> str:
    """One line for on-call: time, severity, video, views/interval, growth, share, regions, z, runbook."""
    try:
        return (f"{rfc3339(alert['at'])}  {alert['severity'].upper():<8}  video {alert['video_id']}  "
                f"{alert['views']:,} views/{per_interval(alert['interval_ms'])}  growth {alert['growth']:.1f}x  "
                f"{share_text(alert)} of platform  {alert['regions']} regions  z {alert['score']:.1f}  id {alert['id']}  "
                f"runbook {alert['runbook_url']}")
    except (KeyError, TypeError, ValueError):
        return f"(unreadable alert) {orjson.dumps(alert).decode()[:300]}"
