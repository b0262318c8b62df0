"""The offline feature log against the real thing: feature updates on a real broker, the writer
service storing them in a real Redis and logging them, and the online store read over a socket
while it runs. No Flink: the updates are produced directly, with versions going back and forth."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pandas as pd
import pytest
from confluent_kafka import Producer

from featurestore import layout
from featurestore.offline_log import read_manifest
from featurestore.offline_store import OfflineStore, rows_as_json
from featurestore.reader import FeatureReader
from featurestore.updates import FeatureUpdate, encode_update
from fyp.runner import make_writer, writer_group
from schemas.features import VIDEO_ENGAGEMENT, VIDEO_SPIKES
from operators.feature_groups import groups_for
from settings.config import REPO_ROOT
from tests.conftest import fyp_command, kill_group, start_fyp, wait_for

pytestmark = pytest.mark.integration

BASE_AS_OF = 1_700_000_000_000
TTLS = {"video_engagement": "3s", "user_interests": "2h", "region_trends": "2h", "video_milestones": "30d",
        "video_spikes": "3s", "spike_alerts": "7d"}


def now_ms() -> int:
    return int(time.time() * 1000)


def random_values(group, rng: random.Random) -> list:
    return [rng.randrange(10**6) if f.dtype == "int" else rng.choice(["normal", "rising", "super_spike"])
            if f.dtype == "str" else rng.random() * 100 for f in group.features]


def pit_updates(groups, rng: random.Random, n: int) -> list[tuple[float, FeatureUpdate]]:
    """(share of the send period, update) for 50 videos in two groups. Videos 0-9 stop early (so
    their keys expire while the test reads), 10-14 start late (absent at first). About a quarter
    of the updates are stale: an older as-of time, a replay of the current version, or the same
    as-of time with fewer events."""
    current: dict = {}
    out = []
    for i in range(n):
        share = i / n
        video = rng.choice([v for v in range(50) if (v >= 10 or share < 0.3) and (not 10 <= v < 15 or share > 0.5)])
        group = groups[VIDEO_ENGAGEMENT if rng.random() < 0.7 else VIDEO_SPIKES]
        key = (group.name, f"v{video:03d}")
        cur = current.get(key)
        r = rng.random()
        if cur is not None and r < 0.1:
            u = FeatureUpdate(group.name, key[1], cur.as_of - rng.randint(1, 3) * 1000, rng.randrange(100),
                              random_values(group, rng))
        elif cur is not None and r < 0.17:
            u = cur  # a replay: the same version again
        elif cur is not None and r < 0.25:
            u = FeatureUpdate(group.name, key[1], cur.as_of, cur.absorbed - 1, random_values(group, rng))
        else:
            if cur is None:
                as_of, absorbed = BASE_AS_OF, 1
            elif rng.random() < 0.3:
                as_of, absorbed = cur.as_of, cur.absorbed + 1
            else:
                as_of, absorbed = cur.as_of + 1000, cur.absorbed + rng.randint(1, 5)
            u = current[key] = FeatureUpdate(group.name, key[1], as_of, absorbed, random_values(group, rng))
        out.append((share, u))
    return out


def produce_over(bootstrap: str, topic: str, timed: list[tuple[float, FeatureUpdate]], seconds: float) -> None:
    """Sends each update at its share of `seconds` of wall time (key = entity id)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    start = time.monotonic()
    for share, u in timed:
        delay = start + share * seconds - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.produce(topic, encode_update(u), key=u.entity_id.encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def test_offline_answers_equal_what_the_online_store_returned(stack):
    cfg, config_path = stack.config("offline-pit", **{"featurestore.ttl": TTLS, "offline.enabled": True,
                                                      "offline.flush_rows": 400, "offline.flush_interval": "1s"})
    groups = groups_for(cfg)
    client = stack.redis(cfg)
    n, send_seconds = 3000, 5.0
    timed = pit_updates(groups, random.Random(11), n)
    writer = make_writer(cfg)  # the writer service as `fyp run` builds it, offline log included
    write_lag_ms = []  # per batch: from the _wt stamp to the pipeline's reply
    real_write = writer.writer.write

    def timed_write(*args, written_at, **kwargs):
        written = real_write(*args, written_at=written_at, **kwargs)
        write_lag_ms.append(time.time() * 1000 - written_at)
        return written
    writer.writer.write = timed_write
    stop = threading.Event()
    service = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    service.start()
    producer = threading.Thread(target=produce_over, args=(stack.bootstrap, cfg.kafka.topics.feature_updates,
                                                           timed, send_seconds), daemon=True)
    started = now_ms()
    producer.start()
    reader = FeatureReader(client, groups)
    rng = random.Random(5)
    samples = []  # (id, just before the read, just after it, FeatureRow)
    live_keys = {}
    read_until = time.monotonic() + send_seconds + 4.5  # past the expiry of the last written keys
    try:
        while time.monotonic() < read_until:
            ids = rng.sample([f"v{v:03d}" for v in range(50)], 5)
            before = now_ms()
            rows = reader.get("video", ids)
            after = now_ms() + 1
            samples.extend((row.entity_id, before, after, row) for row in rows)
            if not producer.is_alive() and not live_keys:
                wait_for(lambda: writer.stats["consumed"] >= n, 30, "the writer to consume every update")
                # the stored write times of what is in Redis now, to find in the log
                for group in (VIDEO_ENGAGEMENT, VIDEO_SPIKES):
                    for v in range(50):
                        stored = layout.decode_row(groups[group], client.get(layout.entity_key(group, f"v{v:03d}")))
                        if stored is not None:
                            live_keys[(group, f"v{v:03d}")] = stored[1:]  # as_of, absorbed, written_at
            time.sleep(rng.random() * 0.03)
    finally:
        stop.set()
        service.join(timeout=10)
        producer.join(timeout=30)
        writer.close()  # commits what the log buffered

    assert writer.stats["consumed"] == n and writer.stats["stale"] > 0 and live_keys
    store = OfflineStore.from_config(cfg)
    logged = {g: store.scan(g) for g in (VIDEO_ENGAGEMENT, VIDEO_SPIKES)}
    assert sum(len(df) for df in logged.values()) == n  # every version, stale ones included
    for (group, eid), (as_of, absorbed, wt) in live_keys.items():
        df = logged[group]
        assert ((df.entity_id == eid) & (df.as_of == as_of) & (df.absorbed == absorbed) & (df.written_at == wt)).any(), \
            f"{group}/{eid}: the version Redis holds, written at {wt}, is not in the log with that write time"

    # A batch's writes land within its write lag after their _wt stamp, so an offline answer that
    # is the same from that long before the read until after it is the only possible one.
    margin = int(max(write_lag_ms)) + 2
    ids = [s[0] for s in samples]
    group_names = [VIDEO_ENGAGEMENT, VIDEO_SPIKES]
    names = [*groups[VIDEO_ENGAGEMENT].names, *groups[VIDEO_SPIKES].names]

    def offline_at(times):
        df = store.get_historical(pd.DataFrame({"id": ids, "ts": times}), entity="video", mode="served")
        return rows_as_json(df, group_names, names)
    earliest = offline_at([s[1] - margin for s in samples])
    latest = offline_at([s[2] for s in samples])
    checked = found = expired = 0
    for (eid, before, after, online), lo, hi in zip(samples, earliest, latest):
        if (lo["as_of"], lo["features"]) != (hi["as_of"], hi["features"]):
            continue  # a write or an expiry within the read's uncertainty: either answer is right
        checked += 1
        assert (online.as_of, online.values) == (hi["as_of"], hi["features"]), \
            f"{eid} read online between {before} and {after}: offline says {hi}, online said {online.to_json()}"
        found += all(hi["as_of"].values())
        # videos 0-9 were last written in the first 1.5 s of the send period; 3 s later they expire
        expired += eid < "v010" and not hi["found"] and before > started + 6000
    # every unambiguous sample was compared above; this only guards against a vacuous test (the
    # share depends on the slowest write of the run: one 90 ms write on a loaded machine widens
    # every sample's window)
    assert checked >= max(300, 0.5 * len(samples)), \
        f"only {checked} of {len(samples)} samples unambiguous (margin {margin} ms)"
    assert found > 100 and expired > 20, (found, expired)

    # the command line gives the same answer (ISO-8601 time, as an analyst would type it)
    eid, _, after, online = next(s for s, lo, hi in zip(samples, earliest, latest)
                                 if lo["features"] == hi["features"] and hi["found"])
    iso = datetime.fromtimestamp(after / 1000, timezone.utc).isoformat(timespec="milliseconds")
    out = subprocess.run(fyp_command(config_path, "offline", "get", "--entity", "video", "--ids", eid,
                                     "--as-of", iso), capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert (printed["id"], printed["ts"], printed["as_of"], printed["features"]) == (eid, after, online.as_of, online.values)


def test_a_killed_writer_neither_loses_nor_duplicates_log_rows(stack, tmp_path):
    """`fyp writer` is SIGKILLed while its buffer holds rows already stored in Redis; a new writer
    reads them again from the topic and logs them, and skips what the old one had committed."""
    cfg, path = stack.config("offline-crash", **{"offline.enabled": True, "offline.flush_rows": 100_000,
                                                 "offline.flush_interval": "1500ms"})
    group = groups_for(cfg)[VIDEO_ENGAGEMENT]
    rng = random.Random(3)
    as_of = {f"v{v:03d}": BASE_AS_OF for v in range(50)}
    timed = []
    n, send_seconds = 6000, 10.0
    for i in range(n):
        eid = rng.choice(sorted(as_of))
        as_of[eid] += 1000
        # absorbed is unique per update, so each logged row can be matched to its one message
        t = as_of[eid] - (3000 if rng.random() < 0.1 else 0)  # some come out of order
        timed.append((i / n, FeatureUpdate(group.name, eid, t, i, random_values(group, rng))))
    topic = cfg.kafka.topics.feature_updates
    producer = threading.Thread(target=produce_over, args=(stack.bootstrap, topic, timed, send_seconds), daemon=True)
    proc = start_fyp(path, "writer", log=tmp_path / "writer-1.log")
    producer.start()
    root = cfg.offline_root
    try:
        wait_for(lambda: read_manifest(root)["files"], 30, "the first writer's first commit")
        time.sleep(0.7)  # half-way to its next commit: its buffer holds rows that are in Redis
    finally:
        kill_group(proc, signal.SIGKILL)
    assert producer.is_alive(), "the writer should die mid-stream"
    log_at_kill = read_manifest(root)["positions"]
    redis_at_kill = {k.decode(): int(v) for k, v in
                     stack.redis(cfg).hgetall(layout.writer_offsets_key(writer_group(cfg))).items()}
    assert sum(redis_at_kill.values()) > sum(log_at_kill.values()) > 0, (redis_at_kill, log_at_kill)

    writer = make_writer(cfg)
    stop = threading.Event()
    service = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    service.start()
    try:
        producer.join(timeout=60)
        wait_for(lambda: writer.stats["consumed"] >= n - sum(log_at_kill.values()), 30,
                   "the second writer to catch up")
    finally:
        stop.set()
        service.join(timeout=10)
        writer.close()
    # it started at the log's positions, below Redis's: the dropped buffer was read again
    assert writer.stats["consumed"] == n - sum(log_at_kill.values())
    # the log covers the topic to its end (offsets from 0, one per update), as the writer's Redis does
    final = read_manifest(root)["positions"]
    assert final == writer.writer.read_offsets(writer_group(cfg)) and sum(final.values()) == n, final
    logged = OfflineStore.from_config(cfg).scan(group.name)
    got = Counter(zip(logged.entity_id, logged.as_of, logged.absorbed))
    want = Counter((u.entity_id, u.as_of, u.absorbed) for _, u in timed)
    assert got == want, (f"missing {sum((want - got).values())}, duplicated {sum((got - want).values())}")
    by_absorbed = logged.set_index("absorbed")
    for _, u in timed[::97]:  # and the values are the update's
        assert by_absorbed.loc[u.absorbed, "views_1h"] == u.values[0]
