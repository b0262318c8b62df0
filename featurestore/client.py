"""The read client for ranking services: N videos x M features, a user's interests and a region's
trends in one Redis round trip, typed, with defaults, ages, a local cache and a circuit breaker.

    client = FeatureClient.from_config(load_config())
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
from itertools import chain
from dataclasses import dataclass, field

import redis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.cluster import RedisCluster

from featurestore.breaker import CircuitBreaker
from featurestore.layout import SchemaMismatch
from featurestore.local_cache import LocalCache
from featurestore.read_plan import GroupSelection, StoredRow, pack_mget, read_many, select
from schemas.features import FeatureGroup

log = logging.getLogger("fyp.features")

REDIS, CACHE, STALE, DEFAULT = "redis", "cache", "stale", "default"
# Redis unreachable, stuck, loading, or (on a cluster) down or resharding: the read falls back
READ_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.exceptions.ClusterDownError,
               redis.exceptions.TryAgainError, OSError)
TYPE_DEFAULTS = {"int": 0, "float": 0.0, "str": "", "json": []}


@dataclass
class ClientSettings:
    timeout_s: float = 0.05
    pool_size: int = 16
    cache_ttl_s: float = 0.5
    cache_max_entries: int = 100_000
    breaker_failures: int = 3
    breaker_open_for_s: float = 1.0
    defaults: dict = field(default_factory=dict)  # feature -> value when missing
    fallback_trends: str = "top_1h"  # the region_trends feature whose videos are the fallback list


class FeatureLayout:
    """One feature list's shape, computed once per list: where each feature sits among the
    selections' rows, its group and its default."""

    def __init__(self, sels, default):
        self.names = tuple(n for sel in sels for n in sel.names)
        self.index = {n: (i, pos) for i, sel in enumerate(sels) for pos, n in enumerate(sel.names)}
        self.group_of = {n: sel.group.name for sel in sels for n in sel.names}
        self.group_names = tuple(sel.group.name for sel in sels)
        self.defaults = [tuple(default(sel.group, n) for n in sel.names) for sel in sels]


class EntityFeatures:
    """One entity's features, kept as the reads Redis or the cache answered (one per group); a
    value is looked up (or defaulted) when asked for, and the per-group dicts (as_of, source) are
    built when first asked for, so a response for hundreds of candidates does not build hundreds
    of dicts nobody reads."""

    __slots__ = ("id", "now_ms", "_layout", "_reads", "_sources", "_values", "_as_of", "_source")

    def __init__(self, id: str, layout: FeatureLayout, reads: list, sources: list, now_ms: int):
        self.id = id
        self.now_ms = now_ms  # when the response was assembled: ages are measured against it
        self._layout = layout
        self._reads = reads  # per group of the layout: its StoredRow (values None: nothing known)
        self._sources = sources  # per group: where its read came from (redis | cache | stale)
        self._values = self._as_of = self._source = None

    def __getitem__(self, feature: str):
        i, pos = self._layout.index[feature]
        row = self._reads[i][0]
        v = None if row is None else row[pos]
        if v is None:
            v = self._layout.defaults[i][pos]
            return list(v) if v.__class__ is list else v
        return v

    @property
    def values(self) -> dict:
        """feature -> typed value, the feature's default when missing."""
        if self._values is None:
            try:
                # the common case, every group read and no value null: one C-level pass
                row = tuple(chain.from_iterable([r[0] for r in self._reads]))
            except TypeError:  # a group with no values (None)
                row = (None,)
            if None in row:
                self._values = {n: self[n] for n in self._layout.names}
            else:
                self._values = dict(zip(self._layout.names, row))
        return self._values

    @property
    def as_of(self) -> dict:
        """group -> the as-of event time (ms) of its values, None when defaulted."""
        if self._as_of is None:
            self._as_of = {g: r.as_of for g, r in zip(self._layout.group_names, self._reads)}
        return self._as_of

    @property
    def source(self) -> dict:
        """group -> where its values came from: redis | cache | stale | default."""
        if self._source is None:
            self._source = {g: DEFAULT if r.values is None else src
                            for g, r, src in zip(self._layout.group_names, self._reads, self._sources)}
        return self._source

    @property
    def missing(self) -> list:
        """Features that got their default (absent key or field)."""
        out = []
        for n, (i, pos) in self._layout.index.items():
            row = self._reads[i].values
            if row is None or row[pos] is None:
                out.append(n)
        return out

    @property
    def found(self) -> bool:
        return any(t is not None for t in self.as_of.values())

    def age_ms(self, feature: str) -> int | None:
        ts = self.as_of[self._layout.group_of[feature]]
        return None if ts is None else self.now_ms - ts

    def to_json(self) -> dict:
        return {"id": self.id, "features": self.values, "as_of": self.as_of,
                "age_ms": {g: None if t is None else self.now_ms - t for g, t in self.as_of.items()},
                "source": self.source, "missing": self.missing}


@dataclass
class FeatureResponse:
    videos: dict  # video id -> EntityFeatures, in the order asked
    user: EntityFeatures | None = None
    region: EntityFeatures | None = None
    degraded: bool = False  # some value could not be read from Redis or the fresh cache
    error: str | None = None
    fallback_videos: list = field(default_factory=list)
    round_trips: int = 0

    def to_json(self) -> dict:
        return {"videos": [e.to_json() for e in self.videos.values()],
                "user": self.user.to_json() if self.user else None,
                "region": self.region.to_json() if self.region else None,
                "degraded": self.degraded, "error": self.error,
                "fallback_videos": self.fallback_videos}


def _read_replies(conn, n: int) -> list:
    """n replies from a redis-py connection. With the hiredis parser, straight from its reader:
    redis-py's read_response() costs ~2 us per reply in Python (redis==5.3.1's _HiredisParser; any
    other parser takes the public path)."""
    parser = conn._parser
    reader = getattr(parser, "_reader", None)
    if reader is None or getattr(parser, "_next_response", None) is not NOT_ENOUGH_DATA:
        return [conn.read_response() for _ in range(n)]
    out = []
    gets, fill = reader.gets, parser.read_from_socket
    while len(out) < n:
        r = gets()
        if r is NOT_ENOUGH_DATA:
            fill()  # blocks up to the socket timeout; raises TimeoutError / ConnectionError
        elif isinstance(r, Exception):
            raise r
        else:
            out.append(r)
    return out


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
        self.cache = LocalCache(self.settings.cache_ttl_s, self.settings.cache_max_entries, clock)
        self.breaker = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_open_for_s, clock)
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

    @classmethod
    def from_config(cls, cfg, **kw) -> "FeatureClient":
        from fyp.connections import check_access, serving_redis_client
        from schemas.features import groups_for

        client = serving_redis_client(cfg)
        check_access(client, "reader", cfg)  # a refused login fails here, not on every read
        return cls(client, groups_for(cfg), cfg.serving.client_settings(), **kw)

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
        if user is not None:
            wanted.append(("user", user, self._selection("user", user_features)))
        if region is not None:
            wanted.append(("region", region, self._selection("region", region_features)))
        results, degraded, error, trips = self._get(wanted)
        resp = FeatureResponse(videos={}, degraded=degraded, error=error, round_trips=trips)
        for (entity, eid, _), res in zip(wanted, results):
            if entity == "video":
                resp.videos[eid] = res
            elif entity == "user":
                resp.user = res
            else:
                resp.region = res
        if region is not None:
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
        reads, sources, degraded, error, trips = self._read(keys)
        now_ms = self.wall_ms()
        layouts: dict = {}  # one per feature list of the request: every video shares one
        out, at = [], 0
        for _, eid, sels in wanted:
            lay = layouts.get(id(sels))
            if lay is None:
                lay = layouts[id(sels)] = self._layout(sels)
            end = at + len(sels)
            out.append(EntityFeatures(eid, lay, reads[at:end], sources[at:end], now_ms))
            at = end
        defaults = sum(1 for r in reads if r[0] is None)
        with self._stats_lock:
            s = self.stats
            s["requests"] += 1
            s["keys"] += len(keys)
            s["defaults_served"] += defaults
        return out, degraded, error, trips

    def _read(self, keys):
        """(selection, entity id) pairs -> per key its StoredRow and where it came from, then
        degraded, error, round trips."""
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
        return self._decode(keys, replies), sources, degraded, error, trips

    def _decode(self, keys, replies) -> list[StoredRow]:
        """The replies of `keys`, decoded by their selections."""
        try:
            return read_many(keys, replies)
        except SchemaMismatch:
            pass  # rare (a rollout): again one by one, serving each unreadable value as missing
        out = []
        for (sel, _), raw in zip(keys, replies):
            try:
                out.append(sel.decode(raw))
            except SchemaMismatch as e:
                self._mismatch(e)
                out.append(StoredRow(None, None, None))
        return out

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
            return _read_replies(conn, 1)[0]
        except BaseException:
            conn.disconnect()  # a half-read reply must not go back to the pool
            raise
        finally:
            pool.release(conn)

    def _mismatch(self, e: SchemaMismatch) -> None:
        """A value written under another definition of its group (a config change rolled out to
        the jobs before this service, or the reverse) reads as absent: its positions would be
        wrong. Counted, and logged once per message."""
        self._count("schema_mismatches")
        if str(e) not in self._mismatches_logged:
            self._mismatches_logged.add(str(e))
            log.warning("feature values unreadable, served as missing: %s", e)

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
