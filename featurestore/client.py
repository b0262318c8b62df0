"""The read client for ranking services: N videos x M features, a user's interests and a region's
trends in one Redis round trip, typed, with defaults, ages, a local cache and a circuit breaker.

    client = feature_client(load_config())   # settings.connections: pool, ACL check, settings
    r = client.get(videos=candidate_ids, video_features=["views_1h", "engagement_rate_1h",
                   "spike_damping"], user="u42", region="US")
    r.videos["v17"]["views_1h"]       # typed value; the feature's default when missing
    r.videos["v17"].age_ms("views_1h")  # now - the value's as-of event time (None when defaulted)
    r.videos["v17"].source            # per group: redis | cache | stale | default
    r.degraded, r.error               # Redis did not answer: values are last-known or defaults
    r.fallback_videos                 # then: the region's last-known trending list

Every source a value can come from is said in the result, so a ranking service can tell a fresh
feature from a fallback. Fallback order when Redis fails (timeout, refused, breaker open): the last
value this process read for that key (source "stale", however old), else the feature's default
(source "default"); and if a region was asked, its last-known trending list in `fallback_videos`,
candidates for a feed that cannot be ranked on features.

Redis: every key of a request in one MGET. Redis Cluster: keys of one entity share a hash tag
(layout.py), so they are in one slot; a `redis.cluster.RedisCluster` client reads one MGET per
slot, pipelined per node.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from redis.cluster import RedisCluster

from featurestore.breaker import CircuitBreaker
from featurestore.client_settings import ClientSettings
from featurestore.local_cache import LocalCache
from featurestore.read_plan import GroupSelection, pack_mget, parse_replies, select
from featurestore.redis_replies import read_replies
from featurestore.response import (CACHE, REDIS, STALE, EntityFeatures, FeatureLayout, FeatureResponse,
                                   build_entities)
from schemas.features import FeatureGroup

log = logging.getLogger("fyp.features")

# Redis unreachable, stuck, loading, or (on a cluster) down or resharding: the read falls back
READ_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.exceptions.ClusterDownError,
               redis.exceptions.TryAgainError, OSError)
TYPE_DEFAULTS = {"int": 0, "float": 0.0, "str": "", "json": []}


def check_defaults(groups: dict[str, FeatureGroup], overrides: dict) -> dict:
    """Per-feature defaults must name a known feature and have its type."""
    by_name = {f.name: f.dtype for g in groups.values() for f in g.features}
    for name, value in overrides.items():
        if name not in by_name:
            raise KeyError(f"default for unknown feature {name!r}")
        want = {"int": int, "float": (int, float), "str": str, "json": (list, dict)}[by_name[name]]
        if not isinstance(value, want) or isinstance(value, bool):
            raise TypeError(f"default for {name!r} must be {by_name[name]}, got {value!r}")
    return overrides


class FeatureClient:
    def __init__(self, client, groups: dict[str, FeatureGroup], settings: ClientSettings | None = None,
                 clock=time.monotonic, wall_ms=lambda: int(time.time() * 1000)):
        self.redis = client
        self.groups = groups
        self.settings = settings or ClientSettings()
        self.cluster = isinstance(client, RedisCluster)
        self.cache = LocalCache(self.settings.cache_ttl / 1000, self.settings.cache_max_entries, clock)
        self.breaker = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_open_for / 1000, clock)
        self.clock = clock
        self.wall_ms = wall_ms
        self._selections: dict = {}
        self._layouts: dict = {}
        self._defaults = check_defaults(groups, self.settings.defaults)
        self._trending: dict[str, list] = {}  # region -> last-known fallback list
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "keys": 0, "cache_hits": 0, "redis_reads": 0, "redis_errors": 0,
                      "breaker_rejections": 0, "stale_served": 0, "defaults_served": 0, "schema_mismatches": 0}
        self._mismatches_logged: set = set()

    def default(self, group: FeatureGroup, name: str):
        if name in self._defaults:
            return self._defaults[name]
        v = TYPE_DEFAULTS[group.dtype(name)]
        return list(v) if isinstance(v, list) else v

    def _selection(self, entity: str, features) -> list[GroupSelection]:
        k = (entity, None if features is None else tuple(features))
        sel = self._selections.get(k)
        if sel is None:
            sel = self._selections[k] = select(self.groups, entity, features)
        return sel

    # -- reads ---------------------------------------------------------------------------------

    def get(self, videos=(), video_features=None, user: str | None = None, user_features=None,
            region: str | None = None, region_features=None) -> FeatureResponse:
        """One round trip (at most) for everything asked. Raises KeyError for an unknown feature."""
        vsels = self._selection("video", video_features)
        wanted = [("video", v, vsels) for v in videos]
        n_videos = len(wanted)  # `videos` may be any iterable
        if user is not None:
            wanted.append(("user", user, self._selection("user", user_features)))
        if region is not None:
            wanted.append(("region", region, self._selection("region", region_features)))
        results, degraded, error, trips = self._get(wanted)
        resp = FeatureResponse(videos={e.id: e for e in results[:n_videos]}, degraded=degraded, error=error,
                               round_trips=trips)
        if user is not None:
            resp.user = results[n_videos]
        if region is not None:
            resp.region = results[-1]
            self._note_trending(region, resp.region)
            if degraded:
                resp.fallback_videos = list(self._trending.get(region, []))
        return resp

    def get_entities(self, entity: str, ids, features=None) -> list[EntityFeatures]:
        """`ids` of one entity kind (video, user, region), in order; see get() for the semantics."""
        sels = self._selection(entity, features)
        return self._get([(entity, eid, sels) for eid in ids])[0]

    def _get(self, wanted) -> tuple[list[EntityFeatures], bool, str | None, int]:
        """(entity, id, selections) -> (EntityFeatures per item, degraded, error, round trips)."""
        # every key of the request in order, one per (entity, group); a key asked twice is read
        # twice (rare, and cheaper than deduplicating every request)
        keys = [(sel, eid) for _, eid, sels in wanted for sel in sels]
        replies, sources, degraded, error, trips = self._read(keys)
        rows = parse_replies(replies)
        now_ms = self.wall_ms()
        out, defaulted, i, at = [], 0, 0, 0
        while i < len(wanted):  # per run of entities asked with one feature list (the videos)
            sels = wanted[i][2]
            j = i + 1
            while j < len(wanted) and wanted[j][2] is sels:
                j += 1
            end = at + (j - i) * len(sels)
            ents, n = build_entities([w[1] for w in wanted[i:j]], self._layout(sels), rows[at:end],
                                     sources[at:end], now_ms, self._mismatch)
            out += ents
            defaulted += n
            i, at = j, end
        with self._stats_lock:
            s = self.stats
            s["requests"] += 1
            s["keys"] += len(keys)
            s["defaults_served"] += defaulted
        return out, degraded, error, trips

    def _read(self, keys):
        """(selection, entity id) pairs -> per key its reply (the stored value; None: nothing
        known) and where it came from, then degraded, error, round trips."""
        # the time before asking Redis: what it answers is at least that fresh. Taken after the
        # answer, a thread kept from the GIL between the reply and the clock (seen: 0.13 s under
        # 8 reader threads) would cache an old value as new, beyond the staleness bound
        asked_at = self.clock()
        replies, misses = self.cache.fresh_many(keys, asked_at)
        sources = [CACHE] * len(keys)
        degraded, error, trips = False, None, 0
        if misses:
            to_fetch = [keys[i] for i in misses]
            if self.breaker.allow():
                trips = 1
                try:
                    fetched = self._fetch(to_fetch)
                except READ_ERRORS as e:
                    self.breaker.failure()
                    degraded, error = True, f"redis read failed: {type(e).__name__}: {e}"
                    self._count("redis_errors")
                else:
                    self.breaker.success()
                    for i, reply in zip(misses, fetched):
                        replies[i] = reply
                        sources[i] = REDIS
                    self.cache.put_many(to_fetch, fetched, asked_at)
                    self._count("redis_reads")
            else:
                degraded, error = True, "circuit breaker open: redis failed recently"
                self._count("breaker_rejections")
            if degraded:
                stale = 0
                for i, key in zip(misses, to_fetch):
                    known = self.cache.last_known(key)
                    if known is not None:  # else None: no value, the defaults
                        replies[i] = known[1]
                        sources[i] = STALE
                        stale += known[1] is not None
                self._count("stale_served", stale)
        hits = len(keys) - len(misses)
        if hits:
            self._count("cache_hits", hits)
        return replies, sources, degraded, error, trips

    def _fetch(self, keys) -> list:
        """One MGET of every key: the stored values (None: absent), in order."""
        if self.cluster:
            # MGET across slots is refused on a cluster: redis-py splits it per slot and pipelines
            # per node (the groups of one entity share a slot, so an entity is never split)
            return self.redis.mget_nonatomic([sel.key(eid) for sel, eid in keys])
        pool = self.redis.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([pack_mget(keys)], check_health=False)
            return read_replies(conn, 1)[0]
        except BaseException:
            conn.disconnect()  # a half-read reply must not go back to the pool
            raise
        finally:
            pool.release(conn)

    def _mismatch(self, sel: GroupSelection, row) -> None:
        """A value written under another definition of its group (a config change rolled out to
        the jobs before this service, or the reverse) reads as absent: its positions would be
        wrong. Counted, and logged once per message."""
        self._count("schema_mismatches")
        msg = str(sel.mismatch(row))
        if msg not in self._mismatches_logged:
            self._mismatches_logged.add(msg)
            log.warning("feature values unreadable, served as missing: %s", msg)

    def _layout(self, sels) -> FeatureLayout:
        k = tuple(map(id, sels))
        lay = self._layouts.get(k)
        if lay is None:
            lay = self._layouts[k] = FeatureLayout(sels, self.default)
        return lay

    def _note_trending(self, region: str, res: EntityFeatures | None) -> None:
        name = self.settings.fallback_trends
        if res is None or name not in res.values or res.source.get("region_trends") not in (REDIS, CACHE):
            return
        ranked = res.values[name]
        if ranked:
            self._trending[region] = [e["video"] for e in ranked]

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[name] += n

    def close(self) -> None:
        self.redis.close()
