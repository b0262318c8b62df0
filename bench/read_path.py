"""Benchmark of the read path: latency of feature reads for ranking services, on loopback.

A dedicated redis-server (started here, on a free port) holds V videos with both video groups
(video_engagement and video_spikes, as the jobs write them). A request reads E random videos x 12
features (10 engagement features and 2 spike features: two keys per video). Measured for E = 1
and 100, with 1 and 8 concurrent clients (separate processes, each one request at a time), for:
- client:       featurestore.client.FeatureClient, local cache off (every key from Redis), so the
                number is the Redis path itself; the caller takes every value of the response
                (`.values` of each video), as a ranking service does;
- client_gc_frozen: "client" in a process that froze its heap (gc.freeze()) after warm-up, as
                latency-sensitive Python services do: how much of the tail is the collector's;
- client_hot:   the same client with its cache on (default TTL) and candidates drawn Zipf(1.1)
                from the catalogue, as a feed's candidates are: hot videos come from the cache;
- naive:        one GET per key, no pipelining (two round trips per video), whole values
                decoded to the same types, for comparison;
- http:         POST /v1/features to `fyp serve` (uvicorn, 1 worker, cache off) through a
                keep-alive http.client connection, JSON encoded and parsed by the caller.
Latency is per request, measured by the caller with perf_counter: p50, p99, p99.9 and requests/s
over D seconds per case (after a warm-up). Goal (issue 5): client p99 <= 0.5 ms for 1 entity and
<= 2 ms for 100. Writes bench/results/read_path.json.

    .venv/bin/python -m bench.read_path [--seconds 4] [--videos 10000]
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import redis
import yaml

from bench.engagement import RESULTS
from featurestore import layout
from featurestore.updates import FeatureUpdate
from featurestore.writer import FeatureWriter
from settings.config import REPO_ROOT, load_config
from stack import daemons
from operators.feature_groups import groups_for
from settings.connections import feature_client

ENGAGEMENT_FEATURES = ["views_1h", "likes_1h", "shares_1h", "comments_1h", "skips_1h", "completion_rate_1h",
                       "engagement_rate_1h", "engagement_score_1h", "views_24h", "engagement_rate_24h"]
SPIKE_FEATURES = ["spike_score", "spike_damping"]
FEATURES = ENGAGEMENT_FEATURES + SPIKE_FEATURES
KINDS = ("client", "client_gc_frozen", "naive", "http", "client_hot")


def video_id(i: int) -> str:
    return f"bv{i:06d}"


def populate(cfg, n_videos: int) -> None:
    groups = groups_for(cfg)
    writer = FeatureWriter(redis.Redis.from_url(cfg.redis.url), groups, {g: cfg.ttl_ms(g) for g in groups})
    rng = random.Random(1)
    now = int(time.time() * 1000)
    eg = groups["video_engagement"]
    batch = []
    for i in range(n_videos):
        vals = [rng.randint(0, 100_000) if f.dtype == "int" else rng.random() for f in eg.features]
        batch.append(FeatureUpdate("video_engagement", video_id(i), now, 10, vals))
        batch.append(FeatureUpdate("video_spikes", video_id(i), now, 10,
                                   [rng.random(), "normal", 0, 1.0, 1.0, rng.randint(0, 50), rng.random() * 10]))
        if len(batch) >= 2000:
            writer.write(batch)
            batch = []
    writer.write(batch)


def _pick(rng, n_videos: int, n: int, zipf: bool) -> list[str]:
    if zipf:
        return [video_id(int(x) % n_videos) for x in rng.zipf(1.1, n)]
    return [video_id(int(x)) for x in rng.integers(0, n_videos, n)]


def _naive_reader(cfg):
    """The baseline: one GET per key, one round trip each, the whole value decoded, typed like
    the client's values."""
    r = redis.Redis.from_url(cfg.redis.url)
    groups = groups_for(cfg)
    eg, sg = groups["video_engagement"], groups["video_spikes"]
    codecs = {g.name: layout.RowCodec(g) for g in (eg, sg)}

    def read(ids):
        out = {}
        for vid in ids:
            row = {}
            for g, names in ((eg, ENGAGEMENT_FEATURES), (sg, SPIKE_FEATURES)):
                stored = codecs[g.name].decode(r.get(layout.entity_key(g.name, vid)))
                values = dict(zip(g.names, stored[0])) if stored else {}
                for n in names:
                    row[n] = values.get(n)
                row[f"{g.name}_as_of"] = stored[1] if stored else None
            out[vid] = row
        return out
    return read


def _client_reader(cfg, cache: bool):
    client = feature_client(cfg)
    if not cache:
        client.cache.ttl_s = 0.0

    def read(ids):
        # every value in hand, as a ranking service needs them (the response looks values up
        # lazily: get() alone would leave that cost out)
        return [e.values for e in client.get(videos=ids, video_features=FEATURES).videos.values()]
    return read


def _http_reader(port: int):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}

    def read(ids):
        conn.request("POST", "/v1/features", orjson.dumps({"videos": ids, "video_features": FEATURES}), headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        return orjson.loads(body)
    return read


def worker(kind: str, cfg_path: str, port: int, n_entities: int, n_videos: int, seconds: float,
           seed: int, start_at: float, out) -> None:
    cfg = load_config(cfg_path)
    read = {"client": lambda: _client_reader(cfg, cache=False),
            "client_gc_frozen": lambda: _client_reader(cfg, cache=False),
            "client_hot": lambda: _client_reader(cfg, cache=True),
            "naive": lambda: _naive_reader(cfg),
            "http": lambda: _http_reader(port)}[kind]()
    rng = np.random.default_rng(seed)
    zipf = kind == "client_hot"
    for _ in range(200):  # warm-up: connections, caches of the plan, the server's first requests
        read(_pick(rng, n_videos, n_entities, zipf))
    if kind == "client_gc_frozen":
        import gc

        gc.collect()
        gc.freeze()
    lat = []
    while time.time() < start_at:  # every process starts measuring together
        time.sleep(0.001)
    end = time.perf_counter() + seconds
    t = time.perf_counter()
    while t < end:
        ids = _pick(rng, n_videos, n_entities, zipf)
        t0 = time.perf_counter()
        read(ids)
        t = time.perf_counter()
        lat.append(t - t0)
    out.put(lat)


def run_case(kind, cfg_path, port, n_entities, clients, n_videos, seconds) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 4.0  # spawn + imports + warm-up of 8 processes on 2 cores
    procs = [ctx.Process(target=worker, args=(kind, cfg_path, port, n_entities, n_videos, seconds, 100 + i,
                                              start_at, q)) for i in range(clients)]
    for p in procs:
        p.start()
    lats = [q.get(timeout=120 + seconds) for _ in procs]
    for p in procs:
        p.join()
    all_ms = np.array([x for lat in lats for x in lat]) * 1000
    return {"kind": kind, "entities": n_entities, "features": len(FEATURES), "clients": clients,
            "requests": int(all_ms.size), "requests_per_s": round(all_ms.size / seconds, 1),
            "p50_ms": round(float(np.percentile(all_ms, 50)), 3),
            "p99_ms": round(float(np.percentile(all_ms, 99)), 3),
            "p999_ms": round(float(np.percentile(all_ms, 99.9)), 3),
            "mean_ms": round(float(all_ms.mean()), 3)}


def start_server(cfg_path: str, port: int) -> subprocess.Popen:
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "fyp.cli", "--config", cfg_path, "serve", "--port", str(port),
                             "--workers", "1"], cwd=REPO_ROOT, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("fyp serve did not become ready in 30 s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="base config (default configs/local.yaml)")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--videos", type=int, default=10_000)
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    ap.add_argument("--entities", default="1,100", help="entities per request, comma-separated")
    ap.add_argument("--clients", default="1,8", help="concurrent clients, comma-separated")
    args = ap.parse_args(argv)
    kinds = args.kinds.split(",")
    if set(kinds) - set(KINDS):
        ap.error(f"unknown kind(s) {sorted(set(kinds) - set(KINDS))}; known: {', '.join(KINDS)}")

    tmp = Path(tempfile.mkdtemp(prefix="fyp-read-bench-"))
    redis_port, http_port = daemons.free_port(), daemons.free_port()
    svc = daemons.redis_service(redis_port, tmp)
    daemons.start(svc, tmp)
    raw = yaml.safe_load(Path(args.config or REPO_ROOT / "configs/local.yaml").read_text())
    raw["redis"] = {**raw.get("redis", {}), "url": f"redis://127.0.0.1:{redis_port}/0"}
    cfg_path = tmp / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    cfg = load_config(cfg_path)
    server = None
    results = []
    try:
        populate(cfg, args.videos)
        # the server reads with its cache off, like the "client" case (so it measures Redis reads)
        raw.setdefault("serving", {})["cache_ttl"] = 0
        server_cfg = tmp / "server.yaml"
        server_cfg.write_text(yaml.safe_dump(raw))
        if "http" in kinds:
            server = start_server(str(server_cfg), http_port)
        for kind in kinds:
            for n_entities in map(int, args.entities.split(",")):
                for clients in map(int, args.clients.split(",")):
                    r = run_case(kind, str(cfg_path), http_port, n_entities, clients, args.videos, args.seconds)
                    results.append(r)
                    print(f"{kind:<16} {n_entities:>3} entities x {len(FEATURES)} features, {clients} client(s): "
                          f"p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  p99.9 {r['p999_ms']:.3f} ms  "
                          f"{r['requests_per_s']:,.0f} req/s", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        daemons.stop(svc, tmp)
    out = {"bench": "read_path", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "videos": args.videos, "seconds_per_case": args.seconds, "features": FEATURES,
           "goal": {"client_p99_ms_1_entity": 0.5, "client_p99_ms_100_entities": 2.0}, "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "read_path.json"
    path.write_text(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
