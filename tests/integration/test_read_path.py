"""The read path against a real Redis: what the writer stored comes back typed in one round trip;
a hot key is served from the local cache with bounded staleness; a stopped Redis gives flagged
fallbacks within the timeout and fresh values once it is back; the HTTP server says the same."""
from __future__ import annotations

import dataclasses
import http.client
import os
import signal
import threading
import time

import orjson
import pytest
import redis
import yaml
from redis.connection import Connection

from featurestore import layout
from featurestore.client import FeatureClient
from featurestore.client_settings import ClientSettings
from featurestore.reader import FeatureReader
from featurestore.updates import FeatureUpdate
from featurestore.writer import FeatureWriter
from settings.config import load_config
from stack import daemons
from operators.feature_groups import groups_for
from tests.conftest import start_fyp, wait_for
from settings.connections import feature_client

pytestmark = pytest.mark.integration

FEATURES = ["views_1h", "likes_1h", "completion_rate_1h", "engagement_rate_24h", "spike_state", "spike_damping"]


def engagement_values(group, i: int, version: int) -> list:
    return [(i * 100 + j + version) if f.dtype == "int" else (i + j + version) / 8 for j, f in enumerate(group.features)]


def spike_values(i: int, version: int) -> list:
    return [round(i / 1000, 3), "rising" if i % 3 == 0 else "normal", version, 0.5 + i / 1000, 2.0, i, 1.5]


def write_videos(writer, groups, ids, as_of: int, version: int = 1) -> None:
    eg = groups["video_engagement"]
    ups = []
    for i, vid in enumerate(ids):
        ups.append(FeatureUpdate("video_engagement", vid, as_of, version, engagement_values(eg, i, version)))
        ups.append(FeatureUpdate("video_spikes", vid, as_of, version, spike_values(i, version)))
    writer.write(ups)


def trends(videos) -> list:
    return [[{"video": v, "score": 10.0 - k, "views": 10 - k, "velocity": 1.0} for k, v in enumerate(videos)]] * 2 + [
        len(videos)]


def make_writer(cfg, client=None):
    groups = groups_for(cfg)
    return FeatureWriter(client or redis.Redis.from_url(cfg.redis.url), groups, {g: cfg.ttl_ms(g) for g in groups}), groups


def test_one_round_trip_typed_values_ages_and_defaults(stack, monkeypatch):
    cfg, _ = stack.config("read-client")
    writer, groups = make_writer(cfg)
    ids = [f"v{i:04d}" for i in range(300)]
    as_of = int(time.time() * 1000) - 5000
    write_videos(writer, groups, ids, as_of)
    writer.write([FeatureUpdate("user_interests", "u1", as_of, 4, [[["music", 2.5]], [["c9", 1.0]], 4, 0]),
                  FeatureUpdate("region_trends", "US", as_of, 0, trends(["v0007", "v0003"]))])
    client = feature_client(cfg)
    client.redis.ping()  # the pool's connection is set up (its handshake is not the read)

    sends = []
    real_send = Connection.send_packed_command
    monkeypatch.setattr(Connection, "send_packed_command", lambda self, *a, **k: (sends.append(1), real_send(self, *a, **k))[1])
    asked = ids + ["never-seen"]
    r = client.get(videos=asked, video_features=FEATURES, user="u1", region="US")
    assert len(sends) == 1 and r.round_trips == 1 and not r.degraded  # 602 + 2 keys, one write to the socket

    eg = groups["video_engagement"]
    names = eg.names
    assert list(r.videos) == asked
    for i, vid in enumerate(ids):
        v = r.videos[vid]
        full = dict(zip(names, engagement_values(eg, i, 1)))
        sp = dict(zip(groups["video_spikes"].names, spike_values(i, 1)))
        expected = {f: full[f] if f in full else sp[f] for f in FEATURES}
        assert v.values == expected
        assert type(v["views_1h"]) is int and type(v["completion_rate_1h"]) is float and type(v["spike_state"]) is str
        assert v.source == {"video_engagement": "redis", "video_spikes": "redis"} and v.missing == []
        assert 5000 <= v.age_ms("views_1h") < 60_000
    unknown = r.videos["never-seen"]
    assert unknown.missing == FEATURES and not unknown.found
    assert unknown.values == {"views_1h": 0, "likes_1h": 0, "completion_rate_1h": 0.0, "engagement_rate_24h": 0.0,
                              "spike_state": "normal", "spike_damping": 1.0}  # configured defaults
    assert r.user["top_categories"] == [["music", 2.5]] and r.user["events"] == 4
    assert [e["video"] for e in r.region["top_1h"]] == ["v0007", "v0003"]

    sends.clear()
    again = client.get(videos=ids[:10], video_features=FEATURES)  # within the cache TTL
    assert sends == [] and again.round_trips == 0
    assert {s for v in again.videos.values() for s in v.source.values()} == {"cache"}
    keys_before = client.stats["keys"]
    lazy = client.get(videos=(v for v in ids[:3]), video_features=FEATURES, user="u1")  # any iterable
    assert list(lazy.videos) == ids[:3] and lazy.user["events"] == 4
    assert client.stats["keys"] - keys_before == 3 * 2 + 1  # two video groups, one user group


def test_value_of_another_group_definition_reads_as_missing_not_misplaced(stack):
    """A job with another definition of a group (here: its version bumped) writes values whose
    positions this reader would get wrong: the client serves defaults and counts it, the plain
    reader refuses, and a value of the reader's own definition still reads."""
    cfg, _ = stack.config("read-schema")
    writer, groups = make_writer(cfg)
    eg = groups["video_engagement"]
    other = {**groups, "video_engagement": dataclasses.replace(eg, version=eg.version + 1)}
    other_writer = FeatureWriter(writer.client, other, {g: cfg.ttl_ms(g) for g in groups})
    as_of = int(time.time() * 1000)
    other_writer.write([FeatureUpdate("video_engagement", "v-other", as_of, 1, engagement_values(eg, 1, 1))])
    write_videos(writer, groups, ["v-own"], as_of)
    client = feature_client(cfg)
    r = client.get(videos=["v-other", "v-own"], video_features=["views_1h", "spike_state"])
    assert not r.degraded
    assert r.videos["v-other"].missing == ["views_1h", "spike_state"]
    assert r.videos["v-other"].source == {"video_engagement": "default", "video_spikes": "default"}
    assert r.videos["v-own"]["views_1h"] == engagement_values(eg, 0, 1)[0] and r.videos["v-own"].missing == []
    assert client.stats["schema_mismatches"] == 1
    with pytest.raises(layout.SchemaMismatch, match="video_engagement: stored schema"):
        FeatureReader(writer.client, groups).get("video", ["v-other"])


def test_hot_key_served_from_cache_with_bounded_staleness(stack):
    cfg, _ = stack.config("read-hot")
    writer, groups = make_writer(cfg)
    ttl = 0.2
    client = FeatureClient(redis.Redis.from_url(cfg.redis.url), groups, ClientSettings(cache_ttl=round(ttl * 1000)))
    base = int(time.time() * 1000)
    written = []  # (monotonic time the write returned, version)
    stop = threading.Event()

    def keep_writing():
        version = 1
        while not stop.is_set():
            write_videos(writer, groups, ["viral"], base + version, version)
            written.append((time.monotonic(), version))
            version += 1
            time.sleep(0.02)

    reads = []  # (monotonic time before the read, version seen, source)

    def keep_reading(out):
        while not stop.is_set():
            t = time.monotonic()
            v = client.get(videos=["viral"], video_features=["views_1h", "spike_started_at"]).videos["viral"]
            if v.found:
                out.append((t, v["spike_started_at"], v.source["video_engagement"]))

    w = threading.Thread(target=keep_writing)
    w.start()
    wait_for(lambda: written, 10, "the first write")
    outs = [[] for _ in range(8)]
    readers = [threading.Thread(target=keep_reading, args=(o,)) for o in outs]
    for t in readers:
        t.start()
    time.sleep(3.0)
    stop.set()
    for t in readers + [w]:
        t.join()
    reads = [x for o in outs for x in o]
    from_cache = sum(1 for _, _, s in reads if s == "cache")
    assert len(reads) > 2000
    assert from_cache / len(reads) > 0.95, f"{from_cache} of {len(reads)} reads from the cache"
    assert client.stats["redis_reads"] < 8 * (3.0 / ttl + 2)  # about one per TTL (and per racing thread)
    # staleness bound: a read never shows a version older than what Redis had `ttl` before it began
    worst = 0.0
    for t, seen, _ in reads:
        newer = [wt for wt, ver in written if ver > seen]
        if newer:
            worst = max(worst, t - min(newer))  # how long ago a newer version had landed
    assert worst <= ttl + 0.05, f"a read showed a version superseded {worst:.3f}s before it"


def returns_within(seconds: float, call):
    """call()'s result; fails if it has not returned after `seconds` (a hung call, not a slow one)."""
    out = []
    worker = threading.Thread(target=lambda: out.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, f"no answer after {seconds}s"
    return out[0]


def test_redis_stopped_gives_flagged_fallbacks_then_fresh_values(own_redis):
    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    cfg = load_config(overrides={"redis.url": url}, env={})
    timeout = 0.05
    settings = ClientSettings(timeout=round(timeout * 1000), cache_ttl="100ms", breaker_failures=3, breaker_open_for="500ms")

    def connect():
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    writer, groups = make_writer(cfg)
    ids = [f"v{i}" for i in range(20)]
    t0 = int(time.time() * 1000)
    write_videos(writer, groups, ids, t0, 1)
    writer.write([FeatureUpdate("region_trends", "DE", t0, 0, trends(["v5", "v9"]))])
    now = [0.0]  # the client's clock, moved by hand: cache TTL and breaker timing without sleeping
    client = FeatureClient(connect(), groups, settings, clock=lambda: now[0])
    first = client.get(videos=ids, video_features=FEATURES, region="DE")
    assert not first.degraded and first.fallback_videos == []
    now[0] += 0.15  # past the cache TTL: the next reads go to Redis

    os.kill(own_redis["pid"], signal.SIGSTOP)  # Redis hangs: reads time out
    r = returns_within(30, lambda: client.get(videos=ids + ["v-new"], video_features=FEATURES, region="DE"))
    assert r.degraded and "Timeout" in r.error  # given up at the socket timeout, not hung
    for vid in ids:
        assert r.videos[vid].values == first.videos[vid].values
        assert r.videos[vid].source == {"video_engagement": "stale", "video_spikes": "stale"}
        assert r.videos[vid].as_of == first.videos[vid].as_of  # the age says how old the fallback is
    assert r.videos["v-new"].source["video_engagement"] == "default"
    assert r.fallback_videos == ["v5", "v9"]  # the region's last-known trending list

    for _ in range(2):  # failures in a row open the breaker: no more waiting for the timeout
        client.get(videos=ids[:1], video_features=FEATURES)
    errors_before = client.stats["redis_errors"]
    r = client.get(videos=ids[:5], video_features=FEATURES)
    assert r.degraded and "breaker" in r.error and client.breaker.trips == 1
    assert client.stats["redis_errors"] == errors_before  # Redis was not asked

    os.kill(own_redis["pid"], signal.SIGKILL)  # and now it is gone: connections refused
    now[0] += settings.breaker_open_for / 1000  # the breaker lets a probe through
    r = client.get(videos=ids[:5], video_features=FEATURES)
    assert r.degraded and "breaker" not in r.error and r.videos["v1"].source["video_engagement"] == "stale"

    own_redis["pid"] = daemons.start(own_redis["svc"], own_redis["root"])  # back, empty (no persistence)
    writer, _ = make_writer(cfg)
    write_videos(writer, groups, ids, t0 + 1000, 2)
    deadline = time.monotonic() + 5
    while True:
        now[0] += (settings.breaker_open_for + settings.cache_ttl) / 1000  # each try may probe and miss the cache
        r = client.get(videos=ids, video_features=FEATURES)
        if not r.degraded:
            break
        assert time.monotonic() < deadline, f"still degraded: {r.error}"
        time.sleep(0.05)
    eg = groups["video_engagement"]
    for i, vid in enumerate(ids):
        v = r.videos[vid]
        assert v.source == {"video_engagement": "redis", "video_spikes": "redis"}
        assert v["views_1h"] == dict(zip(eg.names, engagement_values(eg, i, 2)))["views_1h"]
        assert v.as_of["video_engagement"] == t0 + 1000


def _http(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, orjson.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    resp = c.getresponse()
    return resp.status, orjson.loads(resp.read())


def test_http_server_serves_the_same_reads_and_reports_readiness(own_redis, tmp_path):
    url = f"redis://127.0.0.1:{own_redis['port']}/0"
    port = daemons.free_port()
    cfg_path = tmp_path / "serve.yaml"
    cfg_path.write_text(yaml.safe_dump({"redis": {"url": url}, "serving": {"cache_ttl": "100ms", "timeout": "50ms"}}))
    cfg = load_config(cfg_path, env={})
    writer, groups = make_writer(cfg)
    ids = [f"v{i}" for i in range(30)]
    t0 = int(time.time() * 1000)
    write_videos(writer, groups, ids, t0)
    writer.write([FeatureUpdate("user_interests", "u7", t0, 3, [[["comedy", 1.0]], [], 3, 1]),
                  FeatureUpdate("region_trends", "BR", t0, 0, trends(["v2"]))])
    server = start_fyp(cfg_path, "serve", "--port", str(port), log=tmp_path / "serve.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _http(port, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        body = {"videos": ids + ["nope"], "video_features": FEATURES, "user": "u7", "region": "BR"}
        status, got = _http(port, "POST", "/v1/features", body)
        assert status == 200 and not got["degraded"]
        direct = feature_client(cfg).get(videos=ids + ["nope"], video_features=FEATURES, user="u7", region="BR")
        for g, d in zip(got["videos"], direct.videos.values()):
            assert g["id"] == d.id and g["features"] == d.values and g["as_of"] == d.as_of and g["missing"] == d.missing
        assert got["user"]["features"] == direct.user.values
        assert got["region"]["features"]["top_1h"][0]["video"] == "v2"

        status, got = _http(port, "GET", "/v1/features/video?ids=v3,v4&features=views_1h,spike_state")
        assert status == 200 and [e["features"] for e in got["entities"]] == [
            {"views_1h": direct.videos[v]["views_1h"], "spike_state": direct.videos[v]["spike_state"]} for v in ("v3", "v4")]
        assert _http(port, "POST", "/v1/features", {"videos": ["v1"], "video_features": ["bogus"]}) == (
            400, {"error": "unknown feature 'bogus' for entity 'video'"})
        assert _http(port, "POST", "/v1/features", {"video": ["v1"]})[0] == 400
        assert _http(port, "GET", "/v1/features/video")[0] == 400

        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        assert "fyp_read_requests_total 2.0" in text and "fyp_serve_request_seconds_count" in text
        assert "fyp_read_breaker_open 0.0" in text

        os.kill(own_redis["pid"], signal.SIGSTOP)
        time.sleep(0.15)  # past the server's cache TTL (100 ms): the next read must go to the stopped Redis
        status, ready = wait_for(lambda: (r := _http(port, "GET", "/readyz"))[0] == 503 and r, 10,
                                 "/readyz to say not ready while Redis is stopped")
        assert not ready["ready"]
        assert _http(port, "GET", "/healthz") == (200, {"status": "ok"})  # alive, just not ready
        status, got = _http(port, "POST", "/v1/features", body)
        assert status == 200 and got["degraded"]
        assert got["videos"][0]["source"] == {"video_engagement": "stale", "video_spikes": "stale"}
        assert got["videos"][0]["features"] == direct.videos["v0"].values
        os.kill(own_redis["pid"], signal.SIGCONT)
    finally:
        server.terminate()
        server.wait(10)
