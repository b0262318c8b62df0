"""Pipelined, versioned writes of feature updates into Redis (layout in layout.py)."""
from __future__ import annotations

import time

import redis

from featurestore import layout
from featurestore.updates import FeatureUpdate
from schemas.features import FeatureGroup


class FeatureWriter:
    def __init__(self, client: redis.Redis, groups: dict[str, FeatureGroup], ttl_ms: dict[str, int]):
        self.client = client
        self.groups = groups
        self.ttl_ms = ttl_ms
        self.script = client.register_script(layout.WRITE_SCRIPT)

    def read_offsets(self, writer: str) -> dict[str, int]:
        raw = self.client.hgetall(layout.writer_offsets_key(writer))
        return {k.decode(): int(v) for k, v in raw.items()}

    def write(self, updates: list[FeatureUpdate], offsets: dict | None = None, writer: str = "") -> int:
        """Writes a batch in one pipeline; returns how many were newer than what Redis had.
        Raises redis.ConnectionError / TimeoutError if Redis is unreachable (nothing is lost: the
        caller retries the same batch, and versioning makes the retry harmless)."""
        if not updates and not offsets:
            return 0
        now = str(int(time.time() * 1000))
        pipe = self.client.pipeline(transaction=False)
        for u in updates:
            group = self.groups[u.group]
            if len(u.values) != len(group.features):
                raise ValueError(f"update for {u.group}/{u.entity_id} has {len(u.values)} values, "
                                 f"group has {len(group.features)}")
            args = [u.as_of, u.absorbed, self.ttl_ms[u.group], now]
            for name, value in zip(group.names, u.values):
                args.append(name)
                args.append(layout.encode_value(value))
            self.script(keys=[layout.entity_key(u.group, u.entity_id)], args=args, client=pipe)
        if offsets:
            # after the features, in the same pipeline: a position is never ahead of what it produced
            pipe.hset(layout.writer_offsets_key(writer), mapping=offsets)
        replies = pipe.execute()
        return sum(int(r) for r in replies[:len(updates)])
