"""Versioned writes of feature updates into Redis (layout in layout.py), streamed: each script call
is sent as soon as it is encoded."""
from __future__ import annotations

import logging
import time

import redis
from redis.cluster import RedisCluster

from featurestore import layout
from featurestore.updates import FeatureUpdate
from schemas.features import FeatureGroup

log = logging.getLogger("fyp.writer")


class FeatureWriter:
    def __init__(self, client: redis.Redis, groups: dict[str, FeatureGroup], ttl_ms: dict[str, int]):
        self.client = client
        self.groups = groups
        self.ttl_ms = ttl_ms
        self.script = client.register_script(layout.WRITE_SCRIPT)
        self.codecs = {name: layout.RowCodec(g) for name, g in groups.items()}
        self.coerced_values = 0  # values stored as null: not of their feature's type (a producer bug)
        self._coerced_logged: set = set()

    def read_offsets(self, writer: str) -> dict[str, int]:
        raw = self.client.hgetall(layout.writer_offsets_key(writer))
        return {k.decode(): int(v) for k, v in raw.items()}

    def write(self, updates: list[FeatureUpdate], offsets: dict | None = None, writer: str = "",
              written_at: int | None = None) -> int:
        """Writes a batch; returns how many were newer than what Redis had, then stores `offsets`
        (the read positions the batch came from) once Redis has acknowledged every feature write,
        so a position is never ahead of what it produced. `written_at` (ms, default now) is
        stamped as `_wt` on every key of the batch; the caller passes it when it records the write
        elsewhere too (the offline log), so both agree. Raises redis.ConnectionError /
        TimeoutError if Redis is unreachable (nothing is lost: the caller retries the same batch,
        and versioning makes the retry harmless)."""
        if not updates and not offsets:
            return 0
        now = int(time.time() * 1000) if written_at is None else written_at
        if isinstance(self.client, RedisCluster):
            return self._write_cluster([self._command(u, now) for u in updates], offsets, writer)
        written = self._write_streamed(updates, now)
        if offsets:
            self.client.hset(layout.writer_offsets_key(writer), mapping=offsets)
        return written

    def _command(self, u: FeatureUpdate, now: int) -> tuple[str, list]:
        """(key, script arguments) of one update."""
        group = self.groups[u.group]
        if type(u.values) is not str and len(u.values) != len(group.features):
            raise ValueError(f"update for {u.group}/{u.entity_id} has {len(u.values)} values, "
                             f"group has {len(group.features)}")
        value, bad = self.codecs[u.group].encode(u.as_of, u.absorbed, now, u.values)
        if bad:
            self._note_coerced(u, bad)
        return layout.entity_key(u.group, u.entity_id), [u.as_of, u.absorbed, self.ttl_ms[u.group], value]

    def _write_streamed(self, updates: list[FeatureUpdate], now: int) -> int:
        """The script calls (WRITE_KEYS_PER_CALL keys each) on one connection, each sent as soon as
        it is encoded, the replies read after the last. WHY not a pipeline: redis-py packs a whole
        pipeline before sending any of it, so Redis idled while Python encoded the batch, and no
        key of a batch was stored before the last was encoded. Sent as they come, Redis runs a call
        while Python encodes the next: a batch of 5,000 updates in 4.7-6.3 instead of 9.1-11.9 us an
        update (docs/benchmarks.md, the feature writer), and the first keys land first. EVAL, not
        EVALSHA: Redis keeps the compiled script by its hash either way, and a Redis that restarted
        (losing its scripts) mid-batch cannot fail a call with NOSCRIPT."""
        if not updates:
            return 0
        pool = self.client.connection_pool
        conn = pool.get_connection()
        calls = 0
        try:
            per_call = layout.WRITE_KEYS_PER_CALL
            for at in range(0, len(updates), per_call):
                keys, args = [], []
                for u in updates[at:at + per_call]:
                    key, key_args = self._command(u, now)
                    keys.append(key)
                    args += key_args
                # the connection's health check (a PING and its reply) only before the first call:
                # later it would read a reply of ours
                conn.send_packed_command(conn.pack_command("EVAL", layout.WRITE_SCRIPT, len(keys), *keys, *args),
                                         check_health=calls == 0)
                calls += 1
            written, error = 0, None
            for _ in range(calls):
                try:
                    written += int(conn.read_response())
                except redis.ResponseError as e:  # read the other replies: the connection stays in step
                    error = error or e
        except BaseException:
            conn.disconnect()  # replies may be left unread on it
            raise
        finally:
            pool.release(conn)
        if error is not None:
            raise error
        return written

    def _note_coerced(self, u: FeatureUpdate, bad: list) -> None:
        """A value not of its feature's type is stored as null (read as missing), not refused: the
        rest of the update is good, and a refused write would stop the writer on every retry."""
        self.coerced_values += len(bad)
        for name, value in bad:
            if (u.group, name) not in self._coerced_logged:
                self._coerced_logged.add((u.group, name))
                log.error("%s.%s: %r (entity %s) is not of the feature's type; stored as null "
                          "(logged once per feature)", u.group, name, value, u.entity_id)

    def _write_cluster(self, commands, offsets, writer: str) -> int:
        """Redis Cluster: one pipeline per node (redis-py's cluster pipeline refuses scripts), one
        script call per key (the keys of one call must share a slot), then the positions, after every
        feature pipeline has succeeded. A slot that moved mid-write raises ConnectionError after
        refreshing the slot map: the caller retries the batch, and versioning makes it harmless."""
        by_node: dict = {}
        for key, args in commands:
            node = self.client.get_node_from_key(key)
            by_node.setdefault(node.name, (node, []))[1].append((key, args))
        written = 0
        try:
            for node, cmds in by_node.values():
                pipe = node.redis_connection.pipeline(transaction=False)
                for key, args in cmds:
                    self.script(keys=[key], args=args, client=pipe)
                written += sum(int(r) for r in pipe.execute())
            if offsets:
                self.client.hset(layout.writer_offsets_key(writer), mapping=offsets)
        except redis.ResponseError as e:
            if not str(e).startswith(("MOVED", "ASK")):
                raise
            self.client.nodes_manager.initialize()
            raise redis.ConnectionError(f"cluster slots moved during a write ({e}); slot map refreshed") from e
        return written
