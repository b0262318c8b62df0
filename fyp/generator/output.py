"""Where generated traffic goes: a Kafka topic (at a target rate) or a JSON-lines file."""
from __future__ import annotations

import time
from pathlib import Path

import orjson
from confluent_kafka import Producer


def producer(kafka: dict) -> Producer:
    """`kafka`: connection settings (settings.kafka_clients.client_config)."""
    return Producer({**kafka, "linger.ms": 5, "batch.num.messages": 10000,
                     "queue.buffering.max.messages": 1_000_000, "enable.idempotence": False,
                     "acks": "all"})


def key_of(payload: bytes) -> bytes | None:
    """Partition by video so one video's events keep their order; malformed payloads go unkeyed."""
    try:
        v = orjson.loads(payload).get("video_id")
        return v.encode() if isinstance(v, str) else None
    except Exception:
        return None


def send(kafka: dict, topic: str, payloads, keys=None, target_rate: float = 0.0, release_at_ms=None) -> int:
    """Produces payloads in order. `target_rate` > 0 paces them (events per second of wall time);
    `release_at_ms` (one wall-clock time per payload) holds each back until its time: live
    traffic whose event time is the moment it is sent."""
    p = producer(kafka)
    start = time.monotonic()
    n = 0
    for i, payload in enumerate(payloads):
        if release_at_ms is not None:
            wait = release_at_ms[i] / 1000 - time.time()
            if wait > 0:
                p.poll(0)
                time.sleep(wait)
        key = keys[i] if keys is not None else key_of(payload)
        while True:
            try:
                p.produce(topic, payload, key=key)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if target_rate > 0 and n % 100 == 0:
            ahead = n / target_rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        if n % 10000 == 0:
            p.poll(0)
    remaining = p.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} messages were not delivered to {topic}")
    return n


def write_jsonl(path: str | Path, payloads) -> int:
    n = 0
    with open(path, "wb") as f:
        for payload in payloads:
            f.write(payload.replace(b"\n", b" ") + b"\n")
            n += 1
    return n
