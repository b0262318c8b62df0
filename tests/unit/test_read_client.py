"""The read path's parts without Redis: packed commands, decoding, cache, breaker, defaults."""
from __future__ import annotations

import pytest
from redis.connection import Connection

from featurestore import layout
from featurestore.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from featurestore.client import FeatureClient, check_defaults
from featurestore.client_settings import ClientSettings
from featurestore.local_cache import LocalCache
from featurestore.read_plan import pack_mget, parse_replies, select
from featurestore.response import FeatureLayout, build_entities
from settings.config import ConfigError, load_config
from operators.feature_groups import groups_for

GROUPS = groups_for(load_config(env={}))


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_packed_mget_is_what_redis_py_would_send():
    sel = select(GROUPS, "video", ["views_1h", "spike_state", "engagement_rate_24h"])
    ids = ["v1", "v{1}x", "vidé"]
    keys = [s.key(i) for i in ids for s in sel]
    assert keys[0] == layout.entity_key("video_engagement", "v1")
    expected = b"".join(Connection().pack_command("MGET", *keys))
    assert pack_mget([(s, i) for i in ids for s in sel]) == expected


def test_selection_groups_features_and_names_unknown_ones():
    sel = select(GROUPS, "video", ["views_1h", "spike_state", "likes_1h", "views_1h"])
    assert [(s.group.name, s.names) for s in sel] == [
        ("video_engagement", ("views_1h", "likes_1h")), ("video_spikes", ("spike_state",))]
    with pytest.raises(KeyError, match="unknown feature 'nope' for entity 'video'"):
        select(GROUPS, "video", ["nope"])
    with pytest.raises(KeyError, match="no feature group for entity 'shop'"):
        select(GROUPS, "shop", None)


def _stored(group_name: str, values: list, as_of=1700, written_at=1800) -> bytes:
    g = GROUPS[group_name]
    return layout.RowCodec(g).encode(as_of, 3, written_at, values)[0].encode()


def test_decode_picks_the_asked_features_typed_and_absent_key():
    (eng,) = select(GROUPS, "video", ["completion_rate_1h", "views_1h", "views_24h"])
    names = GROUPS["video_engagement"].names
    values = [i if GROUPS["video_engagement"].dtype(n) == "int" else i / 8 for i, n in enumerate(names)]
    raw = _stored("video_engagement", values)
    want = tuple(values[names.index(n)] for n in eng.names)
    assert eng.decode(raw) == (want, 1700, 1800)
    assert type(eng.decode(raw)[0][0]) is float and type(eng.decode(raw)[0][1]) is int
    assert eng.decode(None) == (None, None, None)
    (one,) = select(GROUPS, "video", ["spike_state"])
    (nulls,) = select(GROUPS, "video", ["spike_score", "spike_state", "spike_started_at"])
    assert nulls.decode(_stored("video_spikes", [float("nan"), "rising", 2.5, 1.0, 1.0, 3, 2.0])) == (
        (None, "rising", None), 1700, 1800)  # not of their types: stored as null, read as missing
    assert one.decode(_stored("video_spikes", [0.5, "rising", 0, 1.0, 1.0, 3, 2.0])) == (("rising",), 1700, 1800)
    (usr,) = select(GROUPS, "user", ["top_categories"])
    assert usr.decode(_stored("user_interests", [[["music", 1.5]], [], 1, 0], 5, 6)) == (([["music", 1.5]],), 5, 6)


def test_decode_refuses_a_value_of_another_group_definition():
    (usr,) = select(GROUPS, "user", ["events"])
    raw = _stored("user_interests", [[], [], 1, 0]).replace(layout.schema_id(GROUPS["user_interests"]).encode(),
                                                            b"00000000", 1)
    with pytest.raises(layout.SchemaMismatch, match="user_interests: stored schema 00000000"):
        usr.decode(raw)


def test_entities_built_a_column_at_a_time_match_each_entity_read_alone():
    sels = select(GROUPS, "video", ["views_1h", "spike_state", "completion_rate_1h", "spike_score"])
    eng_names = GROUPS["video_engagement"].names
    eng = [i if GROUPS["video_engagement"].dtype(n) == "int" else i / 8 for i, n in enumerate(eng_names)]
    spk = [0.5, "rising", 0, 1.0, 1.0, 3, 2.0]
    other = layout.RowCodec(GROUPS["video_engagement"]).encode(1, 1, 1, eng)[0].replace(
        layout.schema_id(GROUPS["video_engagement"]), "00000000", 1).encode()
    replies = {  # per video: (engagement, spikes) as Redis would answer
        "full": (_stored("video_engagement", eng, 10), _stored("video_spikes", spk, 20)),
        "no-spikes": (_stored("video_engagement", eng, 11), None),
        "null-state": (_stored("video_engagement", eng, 12), _stored("video_spikes", [0.5, None] + spk[2:], 22)),
        "other-schema": (other, _stored("video_spikes", spk, 23)),
    }
    ids = list(replies)
    lay = FeatureLayout(sels, lambda group, name: {"spike_state": "normal"}.get(name, -1))
    rows = parse_replies([r for v in ids for r in replies[v]])
    mismatched = []
    ents, defaulted = build_entities(ids, lay, rows, ["redis", "cache"] * len(ids), 1000,
                                     lambda sel, row: mismatched.append((sel.group.name, row[0])))
    assert [e.id for e in ents] == ids and defaulted == 2  # no spikes key; unreadable engagement
    assert mismatched == [("video_engagement", "00000000")]
    for e in ents:  # each entity, as the one-key decode reads it, defaults filled in
        alone = {}
        for sel, raw in zip(sels, replies[e.id]):
            try:
                vals = sel.decode(raw).values
            except layout.SchemaMismatch:
                vals = None
            alone.update(zip(sel.names, vals or [None] * len(sel.names)))
        want_missing = [n for n, v in alone.items() if v is None]
        alone.update({n: lay.defaults[n] for n in want_missing})
        assert e.values == alone and e.missing == want_missing, e.id
    full, no_spikes, null_state, other_schema = ents
    assert full.missing == [] and full.as_of == {"video_engagement": 10, "video_spikes": 20}
    assert full.source == {"video_engagement": "redis", "video_spikes": "cache"} and full.age_ms("spike_state") == 980
    assert no_spikes["spike_state"] == "normal" and no_spikes.source["video_spikes"] == "default"
    assert no_spikes.as_of["video_spikes"] is None and no_spikes.age_ms("spike_score") is None
    assert null_state["spike_state"] == "normal" and null_state.source["video_spikes"] == "cache"
    assert other_schema["views_1h"] == -1 and other_schema.source["video_engagement"] == "default"
    assert other_schema["spike_state"] == "rising"


def test_values_not_written_by_the_pipeline_read_as_missing_not_as_a_failed_request():
    sels = select(GROUPS, "video", ["views_1h", "spike_state"])
    spk = _stored("video_spikes", [0.5, "rising", 0, 1.0, 1.0, 3, 2.0])
    replies = [b"\xff not json", spk, b"5", spk, b'{"a": 1}', spk, b"[]", spk]
    lay = FeatureLayout(sels, lambda group, name: {"spike_state": "normal"}.get(name, -1))
    seen = []
    ents, defaulted = build_entities(["a", "b", "c", "d"], lay, parse_replies(replies), ["redis"] * 8, 0,
                                     lambda sel, row: seen.append(str(sel.mismatch(row))))
    assert defaulted == 4 and len(seen) == 4
    assert all(e.values == {"views_1h": -1, "spike_state": "rising"} for e in ents)
    assert all(e.source == {"video_engagement": "default", "video_spikes": "redis"} for e in ents)
    assert seen[1] == f"video_engagement: stored schema none (value '5'), this reader's {sels[0].schema}"
    for raw in (b"\xff not json", b"5", b"[]"):
        with pytest.raises(layout.SchemaMismatch, match="video_engagement: stored schema none"):
            sels[0].decode(raw)


def test_cache_fresh_within_ttl_then_last_known_and_bounded():
    clock = Clock()
    c = LocalCache(ttl_s=0.5, max_entries=10, clock=clock)
    c.put_many(["a", "absent"], [b"[1]", None], clock.t)
    assert c.fresh_many(["a", "b", "absent"], clock.t + 0.49) == ([b"[1]", None, None], [1])
    assert c.fresh_many(["a", "absent"], clock.t + 0.5) == ([None, None], [0, 1])
    assert c.last_known("a") == (clock.t, b"[1]") and c.last_known("absent") == (clock.t, None)
    assert c.last_known("b") is None
    c.put_many(["a"], [b"[2]"], clock.t + 1)  # a refresh
    assert c.fresh_many(["a"], clock.t + 1.4) == ([b"[2]"], [])
    for i in range(25):
        c.put_many([i], [b"[]"], clock.t)
    assert len(c) <= 10
    assert c.last_known(24) is not None and c.last_known("a") is None  # the oldest reads went first


def test_cache_keeps_no_object_the_garbage_collector_tracks():
    # WHY (local_cache.py): tracked entries replaced on every read made collections rare and slow
    import gc

    c = LocalCache(ttl_s=1, max_entries=100)
    c.put_many([("sel", i) for i in range(50)], [b'["x",1,2,3,4.5]'] * 49 + [None], 1.0)
    assert not any(gc.is_tracked(v) for d in (c._replies, c._asked_at) for v in d.values())


def test_cache_of_size_zero_keeps_nothing():
    c = LocalCache(ttl_s=1, max_entries=0)
    c.put_many(["a"], [b"[]"], 0)
    assert c.last_known("a") is None


def test_breaker_opens_after_failures_probes_once_and_closes():
    clock = Clock()
    b = CircuitBreaker(failures=3, open_for_s=1.0, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == CLOSED
    b.failure()
    assert b.state == OPEN and not b.allow() and b.trips == 1
    clock.t += 1.0
    assert b.state == HALF_OPEN
    assert b.allow()  # the one probe
    assert not b.allow()  # others wait for it
    b.failure()  # the probe failed: open again for a full period
    assert b.state == OPEN and not b.allow()
    clock.t += 1.0
    assert b.allow()
    b.success()
    assert b.state == CLOSED and b.allow() and b.trips == 1


def test_defaults_checked_by_name_and_type():
    assert check_defaults(GROUPS, {"views_1h": 0, "spike_damping": 1}) == {"views_1h": 0, "spike_damping": 1}
    with pytest.raises(KeyError, match="unknown feature 'viewz'"):
        check_defaults(GROUPS, {"viewz": 0})
    with pytest.raises(TypeError, match="views_1h"):
        check_defaults(GROUPS, {"views_1h": "0"})
    with pytest.raises(ConfigError, match="serving.defaults: default for unknown feature 'viewz'"):
        load_config(overrides={"serving.defaults": {"viewz": 1}}, env={})


class DownRedis:
    """A client whose every read fails, for the fallback logic without a server."""
    connection_pool = None

    def __init__(self):
        import redis
        self.error = redis.ConnectionError("Connection refused")

    def pipeline(self, **kw):
        raise self.error


def test_fallback_defaults_when_nothing_is_known(monkeypatch):
    clock = Clock()
    c = FeatureClient(DownRedis(), GROUPS, ClientSettings(defaults={"spike_damping": 1.0}), clock=clock,
                      wall_ms=lambda: 5000)

    def fail(keys):
        raise c.redis.error
    monkeypatch.setattr(c, "_fetch", fail)
    r = c.get(videos=["v1"], video_features=["views_1h", "spike_damping"])
    v = r.videos["v1"]
    assert r.degraded and "Connection refused" in r.error
    assert v.values == {"views_1h": 0, "spike_damping": 1.0}
    assert v.source == {"video_engagement": "default", "video_spikes": "default"}
    assert v.missing == ["views_1h", "spike_damping"] and v.age_ms("views_1h") is None
