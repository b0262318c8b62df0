"""The client's in-process cache: the latest reply per (group selection, entity) key, as Redis
sent it, with the time Redis was asked.

WHY: one viral video is a candidate in nearly every feed request; without a local copy every
request asks Redis for the same key, and that one key's shard becomes the hot spot. An entry is
*fresh* for `ttl_s` after Redis was asked (served without asking Redis: the staleness bound), and
is kept after that as the *last known* value, the fallback when Redis does not answer. Bounded by
`max_entries`: when full, the entries first inserted longest ago are dropped (a hot key dropped
so is read again on its next request: one Redis read).

WHY the raw reply (bytes, None for an absent key) and the time in two dicts, not a decoded tuple
per entry: every read replaces entries, and CPython's collector copes badly with that when the
entries are containers. New ones pile up in the youngest generation while the ones they replace
are freed from older generations, so the count that triggers a collection barely moves: the
collections come rarely and each one scans everything that piled up (measured: ~38,000 young
objects, 15-30 ms per collection, one request in ~140 of 100 videos: the whole p99). bytes and
floats are not tracked by the collector. A cache hit is decoded again, with the rest of the
request (one JSON parse for all of it).

Thread-safe without a lock on the read path: single dict get/set are atomic under the GIL; the
reply is stored before its time, so a reader that sees the new time sees the new reply; only
eviction takes the lock.
"""
from __future__ import annotations

import threading
import time
from itertools import repeat

_EVICTED = object()


class LocalCache:
    def __init__(self, ttl_s: float, max_entries: int, clock=time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._asked_at: dict = {}  # key -> monotonic seconds when Redis was asked for its reply
        self._replies: dict = {}  # key -> the reply: the stored value (bytes), None when absent
        self._evict_lock = threading.Lock()

    def fresh_many(self, keys, now: float) -> tuple[list, list]:
        """-> (per key its fresh reply, None where there is none, [indexes of the keys with no
        fresh reply]): the lookup of a whole request in one loop."""
        asked, replies, ttl = self._asked_at.get, self._replies.get, self.ttl_s
        found, misses = [], []
        for i, key in enumerate(keys):
            t = asked(key)
            if t is not None and now - t < ttl:
                reply = replies(key, _EVICTED)
                if reply is not _EVICTED:  # (evicted since its time was read: a miss)
                    found.append(reply)
                    continue
            found.append(None)
            misses.append(i)
        return found, misses

    def last_known(self, key) -> tuple[float, bytes | None] | None:
        """(when Redis was asked, its reply) of the latest reply kept for `key`, or None."""
        t = self._asked_at.get(key)
        return None if t is None else (t, self._replies.get(key))

    def put_many(self, keys, replies, asked_at: float) -> None:
        """The replies of `keys`, Redis asked at `asked_at`, in two dict updates. A refresh
        replaces the entry in place: moving the key to the back (pop, insert) made every read
        churn the dict, about 0.5 us per key on a 20,000-entry cache (measured), so eviction
        order is first inserted, first out."""
        if self.max_entries <= 0:
            return
        self._replies.update(zip(keys, replies))
        self._asked_at.update(zip(keys, repeat(asked_at)))
        if len(self._asked_at) > self.max_entries:
            with self._evict_lock:
                excess = len(self._asked_at) - self.max_entries + self.max_entries // 10
                for k in list(self._asked_at)[:max(excess, 0)]:
                    self._asked_at.pop(k, None)
                    self._replies.pop(k, None)

    def __len__(self) -> int:
        return len(self._asked_at)
