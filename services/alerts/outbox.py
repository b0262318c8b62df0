"""A webhook's durable outbox in Redis (layout.alert_outbox_key(webhook)): the alerts it has not yet
accepted, so they survive a restart of the alerter and a receiver that is down.

One hash per webhook, field = alert id, value = JSON
    {"alert": <the alert event>, "enqueued_ms": wall ms, "due_ms": wall ms of the next attempt,
     "failures": attempts that failed so far, "last_error": text}
The payload is rebuilt from the alert at each attempt (payloads.py), so the outbox holds no
receiver-specific bytes and no secrets. Pending deliveries are few (alerts are rare, and an entry
leaves on success or after give_up_after), so the delivery thread reads the whole hash each round.

Retry schedule after the n-th failure: retry_initial * 2**(n-1), at most retry_max (retry_delay_ms).
"""
from __future__ import annotations

import orjson

from featurestore import layout


def retry_delay_ms(failures: int, initial_ms: int, max_ms: int) -> int:
    """Wait before the next attempt, after `failures` (>= 1) failed attempts."""
    if failures < 1:
        return 0
    return min(initial_ms * 2 ** min(failures - 1, 62), max_ms)


class Outbox:
    def __init__(self, client, webhook: str):
        self.client, self.webhook, self.key = client, webhook, layout.alert_outbox_key(webhook)

    def add(self, alert: dict, now_ms: int, pipe=None) -> None:
        """Queues the alert for delivery now, unless it is queued already (HSETNX: a repeat keeps the
        entry's schedule). In `pipe` when given."""
        entry = {"alert": alert, "enqueued_ms": now_ms, "due_ms": now_ms, "failures": 0, "last_error": ""}
        (pipe or self.client).hsetnx(self.key, alert["id"], orjson.dumps(entry))

    def entries(self) -> dict[str, dict]:
        return {k.decode(): orjson.loads(v) for k, v in self.client.hgetall(self.key).items()}

    def reschedule(self, alert_id: str, entry: dict) -> None:
        self.client.hset(self.key, alert_id, orjson.dumps(entry))

    def remove(self, alert_id: str) -> None:
        self.client.hdel(self.key, alert_id)

    def __len__(self) -> int:
        return self.client.hlen(self.key)
