"""The feature writer's Python work per update, apart from Redis and Kafka: decode, newest per key,
encode, offline log (its Parquet files in a temporary folder); then its writes into the config's
Redis (the local stack's: `make up`).

Input: the update records of a sparse engagement backfill, generated: `--updates` engagement
updates (1h/6h/24h windows, mixed int and float values) over `--videos` videos, each video's
updates a second apart, packed as the job packs them (JSON arrays of about 32 KB), read in polls
of `--poll-records` records as the writer reads them. Each case runs in a process of its own (the
collector's state is the process's): `python_default` with Python's thresholds, `rare_full` with
the writer's policy (services/gc_policy.py). Reports each step's seconds and the collector's
time per generation (gc.callbacks). Last, `FeatureWriter.write` of batches of `--redis-batches`
engagement updates into Redis (keys `bench-writer-*`, 60 s TTL): the median wall time per update
over 20 batches of each size. And how long a thread of the writer's process waits for the GIL
while the offline log flushes 50,000 rows beside it (`flush_gil_gaps_ms`: the longest and the
99th percentile of the gaps between the 1 ms ticks of a thread that sleeps 1 ms at a time).
Writes bench/results/writer.json.

    .venv/bin/python -m bench.writer [--config C] [--updates 1400000] [--videos 250000]
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from bench.engagement import RESULTS
from featurestore.offline_log import OfflineLog
from featurestore.updates import FeatureUpdate, decode_updates, encode_records, latest_per_entity
from featurestore.layout import RowCodec
from featurestore.writer import FeatureWriter
from operators.feature_groups import groups_for
from services.gc_policy import rare_full_collections
from settings.config import load_config
from settings.connections import redis_client

GROUP = "video_engagement"
CASES = ("python_default", "rare_full")


def make_records(groups: dict, n_updates: int, n_videos: int, seed: int = 7) -> list[str]:
    """Engagement updates as the job sends them: per step, the videos with views, each with
    the three windows' counts (ints) and ratios (floats, to the last digit as divisions give
    them), the values as the text of their array (featurestore/updates.py)."""
    rng = random.Random(seed)
    group = groups[GROUP]
    per_window = len(group.features) // 3
    updates = []
    t = 1_782_000_000_000
    absorbed: dict = {}
    while len(updates) < n_updates:
        t += 1000
        for _ in range(min(200, n_updates - len(updates))):
            video = f"v{rng.randrange(n_videos):07d}"
            absorbed[video] = absorbed.get(video, 0) + 1
            window = [rng.randrange(100) if f.dtype == "int" else rng.randrange(1, 1000) / rng.randrange(1, 1000)
                      for f in group.features[:per_window]]
            updates.append(FeatureUpdate(GROUP, video, t, absorbed[video], orjson.dumps(window * 3).decode()))
    return encode_records(updates)


def run_case(case: str, groups: dict, records: list[bytes], poll_records: int) -> dict:
    codecs = {name: RowCodec(g) for name, g in groups.items()}  # the writer's encoding (FeatureWriter.write)
    if case == "rare_full":
        rare_full_collections()
    started: dict = {}
    gc_seconds = [0.0, 0.0, 0.0]
    gc_counts = [0, 0, 0]

    def note(phase, info):
        g = info["generation"]
        if phase == "start":
            started[g] = time.perf_counter()
        else:
            gc_seconds[g] += time.perf_counter() - started[g]
            gc_counts[g] += 1

    steps = dict(decode=0.0, newest_per_key=0.0, encode=0.0, offline_log=0.0)
    gc.callbacks.append(note)
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        log = OfflineLog(folder, groups)
        for at in range(0, len(records), poll_records):
            t0 = time.perf_counter()
            updates = []
            for raw in records[at:at + poll_records]:
                updates += decode_updates(raw)
            t1 = time.perf_counter()
            batch = latest_per_entity(updates)
            t2 = time.perf_counter()
            for u in batch:
                codecs[u.group].encode(u.as_of, u.absorbed, 0, u.values)
            t3 = time.perf_counter()
            log.append(updates, 1_782_000_000_000 + at, {"bench:0": at})
            steps["decode"] += t1 - t0
            steps["newest_per_key"] += t2 - t1
            steps["encode"] += t3 - t2
            steps["offline_log"] += time.perf_counter() - t3
        log.close()
    total = time.perf_counter() - begin
    gc.callbacks.remove(note)
    return {"seconds": round(total, 2), "steps": {k: round(v, 2) for k, v in steps.items()},
            "gc_seconds": [round(s, 2) for s in gc_seconds], "gc_collections": gc_counts}


def redis_writes(cfg, groups: dict, batch_sizes: list[int], repeats: int = 20) -> dict:
    """Median microseconds per update of FeatureWriter.write, per batch size; every batch newer
    than the last, so every key is written."""
    writer = FeatureWriter(redis_client(cfg, "writer"), groups, {name: 60_000 for name in groups})
    rng = random.Random(11)
    group = groups[GROUP]
    values = orjson.dumps([rng.randrange(100) if f.dtype == "int" else rng.randrange(1, 1000) / rng.randrange(1, 1000)
                           for f in group.features]).decode()
    as_of = int(time.time() * 1000)
    out = {}
    for size in batch_sizes:
        seconds = []
        for _ in range(repeats):
            as_of += 1
            batch = [FeatureUpdate(GROUP, f"bench-writer-{i}", as_of, 1, values) for i in range(size)]
            t0 = time.perf_counter()
            written = writer.write(batch)
            seconds.append(time.perf_counter() - t0)
            assert written == size, (written, size)
        out[f"us_per_update_batch_{size}"] = round(1e6 * statistics.median(seconds) / size, 2)
    return out


def flush_gil_gaps(groups: dict, rows: int = 50_000) -> dict:
    """The gaps a 1 ms ticker thread sees while the offline log flushes `rows` engagement updates
    on its own thread (the writer's thread waits as long for the GIL), with the writer's collector
    policy."""
    rare_full_collections()
    updates = []
    for raw in make_records(groups, rows, rows):
        updates += decode_updates(raw.encode())
    gaps, stop = [], threading.Event()

    def tick():
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    with tempfile.TemporaryDirectory() as folder:
        log = OfflineLog(folder, groups, flush_rows=10 * rows)
        for at in range(0, len(updates), 5000):
            log.append(updates[at:at + 5000], 1_782_000_000_000, {"bench:0": at})
        ticker = threading.Thread(target=tick)
        ticker.start()
        time.sleep(0.2)
        gaps.clear()
        began = time.perf_counter()
        log.flush()
        log.wait()
        seconds = time.perf_counter() - began
        stop.set()
        ticker.join()
        log.close()
    gaps.sort()
    return {"rows": len(updates), "flush_seconds": round(seconds, 3), "max": round(1000 * gaps[-1], 1),
            "p99": round(1000 * gaps[int(0.99 * len(gaps))], 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--updates", type=int, default=1_400_000)
    ap.add_argument("--videos", type=int, default=250_000)
    ap.add_argument("--poll-records", type=int, default=2000, help="records per poll (featurestore.writer.batch_max)")
    ap.add_argument("--redis-batches", default="500,5000", help="batch sizes of the Redis writes, comma-separated")
    ap.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one case, in a child process
    ap.add_argument("--records", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(RESULTS / "writer.json"))
    args = ap.parse_args()
    cfg = load_config(args.config)
    groups = groups_for(cfg)
    if args.case:
        records = orjson.loads(Path(args.records).read_bytes())
        print(orjson.dumps(run_case(args.case, groups, [r.encode() for r in records], args.poll_records)).decode())
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.json"
        records = make_records(groups, args.updates, args.videos)
        path.write_bytes(orjson.dumps(records))
        result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                  "args": {k: v for k, v in vars(args).items() if k not in ("case", "records", "out")},
                  "records": len(records)}
        for case in CASES:
            out = subprocess.run([sys.executable, "-m", "bench.writer", "--case", case, "--records", str(path),
                                  *(["--config", args.config] if args.config else []),
                                  "--poll-records", str(args.poll_records)], check=True, capture_output=True)
            result[case] = orjson.loads(out.stdout.splitlines()[-1])
            print(case, result[case], flush=True)
        result["redis_write"] = redis_writes(cfg, groups, [int(n) for n in args.redis_batches.split(",")])
        print("redis_write", result["redis_write"], flush=True)
        result["flush_gil_gaps_ms"] = flush_gil_gaps(groups)
        print("flush_gil_gaps_ms", result["flush_gil_gaps_ms"], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
