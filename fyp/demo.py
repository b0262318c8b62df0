"""`fyp demo`: a few minutes of traffic through the combined job into Redis, then the features.

Sends the catalog's upload events and a 10-minute backlog of traffic ending now, starts the
combined job `features` (embedded Flink: every family) with its writer, notifier and alerter,
streams live traffic for a while, and prints what Redis holds for the most viewed videos, the most
active user and the GLOBAL trend list, refreshing as the live events arrive.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter

import orjson

from featurestore.reader import FeatureReader
from stack import procs
from settings.config import Config
from fyp.generator import output
from settings.kafka_clients import client_config
from fyp.generator.traffic import TrafficSpec, generate
from fyp.runner import redis_client
from operators.feature_groups import groups_for

SHOWN = ["views_1h", "likes_1h", "completion_rate_1h", "engagement_rate_1h", "engagement_score_1h", "views_24h"]


def _traffic(cfg: Config, start_ms: int, minutes: float, rate: float, seed: int):
    return generate(TrafficSpec(seed=seed, start_ms=start_ms, duration_ms=int(minutes * 60_000), mean_rate=rate,
                                videos=500, users=20_000, max_ooo_ms=cfg.engagement.max_out_of_orderness,
                                malformed_share=0.002))


def _print_top(reader: FeatureReader, ids: list[str]) -> None:
    rows = reader.get("video", ids, SHOWN)
    print(f"{'video':10} {'as_of (UTC)':20} " + " ".join(f"{n:>19}" for n in SHOWN))
    for r in rows:
        ts = r.as_of["video_engagement"]
        when = time.strftime("%H:%M:%S", time.gmtime(ts / 1000)) if ts else "-"
        vals = " ".join(f"{v:>19.4f}" if isinstance(v, float) else f"{str(v):>19}" for v in r.values.values())
        print(f"{r.entity_id:10} {when:20} {vals}")
    sys.stdout.flush()


def _print_user_and_trends(reader: FeatureReader, user: str) -> None:
    (u,) = reader.get("user", [user], ["top_categories", "events"])
    cats = ", ".join(f"{c} {w:.2f}" for c, w in (u.values["top_categories"] or [])[:4])
    print(f"user {user}: {u.values['events']} views this session; interests: {cats or '-'}")
    (g,) = reader.get("region", ["GLOBAL"], ["top_15m"])
    trend = ", ".join(f"{e['video']} {e['score']:.1f}" for e in (g.values["top_15m"] or [])[:5])
    print(f"trending (GLOBAL, 15 min): {trend or '-'}")
    sys.stdout.flush()


def _reset(cfg: Config) -> None:
    """A clean slate on the local stack: the demo's topics recreated, its Redis db emptied."""
    from confluent_kafka.admin import AdminClient

    from stack.local import all_topics, ensure_topics

    admin = AdminClient(client_config(cfg.kafka))
    for fut in admin.delete_topics(all_topics(cfg)).values():
        try:
            fut.result()
        except Exception:
            pass
    time.sleep(1)
    ensure_topics(cfg)
    redis_client(cfg).flushdb()
    shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)


def run_demo(cfg: Config, config_path: str | None, live_seconds: int = 30) -> None:
    print(f"demo: resetting the local stack (topics on {cfg.kafka.bootstrap}, Redis {cfg.redis.url})", flush=True)
    _reset(cfg)
    now = int(time.time() * 1000)
    seed = int(now // 1000) % 1000  # one catalog for backlog and live traffic
    backlog = _traffic(cfg, now - 600_000, 10, 60, seed=seed)
    kafka = client_config(cfg.kafka)
    output.send(kafka, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in backlog.uploads])
    n = output.send(kafka, cfg.kafka.topics.engagement, backlog.payloads)
    print(f"sent {len(backlog.uploads)} upload events and a 10-minute backlog: {n} events "
          f"(incl. {backlog.kinds.count('malformed')} malformed)", flush=True)
    top = [v for v, _ in Counter(e["video_id"] for e in backlog.events if e).most_common(5)]
    user = Counter(e["user_id"] for e in backlog.events if e).most_common(1)[0][0]

    cmd = [sys.executable, "-m", "fyp.cli"] + (["--config", config_path] if config_path else []) + ["run", "features", "--fresh"]
    job = subprocess.Popen(cmd, start_new_session=True)
    reader = FeatureReader(redis_client(cfg), groups_for(cfg))
    try:
        deadline = time.monotonic() + 180
        caught_up = now - 10_000  # the watermark has passed (almost) the whole backlog
        while time.monotonic() < deadline and (reader.get("video", top[:1], SHOWN)[0].as_of["video_engagement"] or 0) < caught_up:
            if job.poll() is not None:
                raise SystemExit("the features job exited; see its output above")
            time.sleep(1)
        print("\nfeatures in Redis after the backlog:")
        _print_top(reader, top)
        _print_user_and_trends(reader, user)

        print(f"\nstreaming live traffic for {live_seconds}s (event time = now) ...", flush=True)
        live = _traffic(cfg, int(time.time() * 1000), live_seconds / 60, 150, seed=seed)
        output.send(kafka, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in live.uploads])
        release = [orjson.loads(p)["event_time"] if e else time.time() * 1000 for p, e in zip(live.payloads, live.events)]
        output.send(kafka, cfg.kafka.topics.engagement, live.payloads, release_at_ms=release)
        time.sleep(3)
        print(f"\nfeatures in Redis {time.strftime('%H:%M:%S', time.gmtime())} UTC, after the live traffic:")
        _print_top(reader, top)
        _print_user_and_trends(reader, user)
        print("\nread any video with: .venv/bin/fyp features get video " + " ".join(top[:2]))
    finally:
        procs.stop_group_leader(job)
