"""Our jobs against the floor: plain Flink SQL on the same input, the same cores, in the same run.

Input: N engagement events (Zipf over V videos, R events per second of event time, disorder under
100 ms) in a JSON-lines file, and the same N spread over `--sparse-hours` of event time (windows
fill: the rate must hold).
1. Floor: a Flink SQL job that parses the JSON (Flink's json format), sums the engagement fields
   per video and 1-minute TUMBLE, and writes to a blackhole sink; parallelism from the config.
   The jobs' shared front alone (jobs/front.py) into a blackhole, on the same file.
2. `fyp backfill engagement --input` (the whole job: parse, validate, route, sliding 1h/6h/24h
   windows, update messages to Kafka, the feature writer to Redis; the Flink job's run time).
3. `fyp backfill features --input --uploads`: every family in the combined job.
events/s = N / the Flink job's net run time; for our jobs also N / the time from submitting the job
until its last update is in Redis (`events_per_s_to_redis`: the writer drained to the end markers);
peak resident memory of the process tree (driver, JVM, Python workers), sampled every 0.5 s; CPU
seconds from the job's first task to the run's end per group of threads (bench/thread_cpu.py:
the JIT, the collector, each operator chain, the driver with the writer, the broker, Redis).
Writes bench/results/floor.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench.engagement import RESULTS, bench_config
from bench.feature_jobs import TreeMemory, stats_of
from bench.thread_cpu import ThreadCpu
from jobs.flink_env import set_local_jvm_options
from settings.config import REPO_ROOT, load_config
from fyp.generator import output
from fyp.generator.traffic import TrafficSpec, generate

FLOOR_SQL = """
CREATE TABLE events (
  video_id STRING, event_time BIGINT, watch_time_ms BIGINT, liked BOOLEAN, shared BOOLEAN,
  commented BOOLEAN, skipped BOOLEAN,
  rowtime AS TO_TIMESTAMP_LTZ(event_time, 3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '0.5' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json', 'json.ignore-parse-errors' = 'true');
CREATE TABLE sink (video_id STRING, window_start TIMESTAMP(3), n_views BIGINT, n_likes BIGINT, n_shares BIGINT,
  n_comments BIGINT, n_skips BIGINT, watch_time_ms BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink
SELECT video_id, window_start, COUNT(*), SUM(CASE WHEN liked THEN 1 ELSE 0 END),
       SUM(CASE WHEN shared THEN 1 ELSE 0 END), SUM(CASE WHEN commented THEN 1 ELSE 0 END),
       SUM(CASE WHEN skipped THEN 1 ELSE 0 END), SUM(watch_time_ms)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
GROUP BY video_id, window_start, window_end
"""


def make_input(folder: Path, name: str, events: int, videos: int, seconds: float) -> tuple[Path, Path, int]:
    traffic = generate(TrafficSpec(seed=23, start_ms=1_782_000_000_000, duration_ms=int(seconds * 1000),
                                   mean_rate=events / seconds, videos=videos, users=max(1000, events // 10),
                                   diurnal_amplitude=0.0, new_video_share=0.0, ooo_share=0.02, max_ooo_ms=100,
                                   late_share=0.0, straggler_share=0.0,
                                   malformed_share=0.0))
    ev, up = folder / f"{name}-events.jsonl", folder / f"{name}-uploads.jsonl"
    output.write_jsonl(ev, traffic.payloads)
    output.write_jsonl(up, [orjson.dumps(u) for u in traffic.uploads])
    return ev, up, len(traffic.payloads)


def run_floor(args, events: Path, n: int) -> dict:
    """The floor job in a process of its own (its own mini-cluster), timed by Flink."""
    script = f"""
import sys, orjson
from pyflink.table import EnvironmentSettings, TableEnvironment
t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t.get_config().set("parallelism.default", "{args.parallelism}")
stmts = {FLOOR_SQL.format(path=events.resolve())!r}.strip().split(";\\n")
for s in stmts[:-1]:
    t.execute_sql(s)
result = t.execute_sql(stmts[-1]).get_job_client().get_job_execution_result().result()
print(orjson.dumps({{"job_seconds": result.get_net_runtime() / 1000}}).decode())
"""
    return _timed("floor", [sys.executable, "-c", script], n, args.folder / "floor.log", args.beside)


FRONT_SCRIPT = """
import sys, orjson
from settings.config import load_config
from jobs import front
cfg = load_config({config!r})
job = front.new_job(cfg, "front-alone", {path!r})
front.engagement_stream(cfg, job.t_env, job.stmts, "front", {path!r})
job.t_env.execute_sql("CREATE TEMPORARY TABLE front_sink (video_id STRING, event_time BIGINT, route STRING) "
                      "WITH ('connector' = 'blackhole')")
job.stmts.add_insert_sql("INSERT INTO front_sink SELECT video_id, event_time, route FROM engagement_events")
job.stmts.attach_as_datastream()
print(orjson.dumps({{"job_seconds": job.env.execute("front-alone").get_net_runtime() / 1000}}).decode())
"""


def run_front(args, events: Path, n: int) -> dict:
    """The jobs' shared front alone (jobs/front.py: source, validation and parse, routing, dead
    letters) into a blackhole: what the front costs against the floor."""
    script = FRONT_SCRIPT.format(config=args.config, path=str(events.resolve()))
    return _timed("front", [sys.executable, "-c", script], n, args.folder / "front.log", args.beside)


def run_backfill(args, job: str, events: Path, uploads: Path, n: int, tag: str) -> dict:
    cfg, path = bench_config(args.config, f"{tag}-{job}", args.parallelism, {})
    cmd = [sys.executable, "-m", "fyp.cli", "--config", str(path), "backfill", job, "--input", str(events)]
    if job != "engagement":
        cmd += ["--uploads", str(uploads)]
    return _timed(f"fyp backfill {job}", cmd, n, cfg.state_dir / "bench" / f"{tag}-{job}" / "backfill.log",
                  args.beside)


def _timed(label: str, cmd, n: int, log: Path, beside: dict) -> dict:
    """Runs `cmd`; its Flink job's events/s, memory, and CPU with that of the processes `beside`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=REPO_ROOT)
    mem = TreeMemory([proc.pid])
    mem.start()
    cpu = ThreadCpu(proc.pid, beside)
    cpu.start()
    proc.wait()
    mem.stop.set()
    cpu.stop.set()
    cpu.join()
    if proc.returncode:
        raise SystemExit(f"{label} failed: see {log}")
    stats = stats_of(log)
    seconds = stats["job_seconds"]
    res = {"events": n, "job_seconds": round(seconds, 1), "events_per_s": round(n / seconds),
           "peak_rss_mb": round(mem.peak / 2**20)}
    if "seconds" in stats:  # a backfill: also until its last update is in Redis (the writer drained)
        res.update(to_redis_seconds=stats["seconds"], events_per_s_to_redis=round(n / stats["seconds"]))
    print(label, res, flush=True)
    res["cpu_seconds_from_job_start"] = cpu.result()
    print("  CPU seconds from the job's start:", res["cpu_seconds_from_job_start"], flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--videos", type=int, default=50_000)
    ap.add_argument("--event-rate", type=float, default=100_000.0, help="events per second of event time")
    ap.add_argument("--sparse-hours", type=float, default=2.0)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--inputs", help="a folder of an earlier run: its input files, not new ones")
    ap.add_argument("--out", default=str(RESULTS / "floor.json"))
    args = ap.parse_args()
    tag = f"floor{int(time.time())}"
    args.folder = REPO_ROOT / ".fyp" / "bench" / tag
    args.folder.mkdir(parents=True, exist_ok=True)
    if args.inputs:
        given = Path(args.inputs)
        dense, sparse = ((given / f"{n}-events.jsonl", given / f"{n}-uploads.jsonl",
                          sum(1 for _ in open(given / f"{n}-events.jsonl", "rb"))) for n in ("dense", "sparse"))
    else:
        dense = make_input(args.folder, "dense", args.events, args.videos, args.events / args.event_rate)
        sparse = make_input(args.folder, "sparse", args.events, args.videos, args.sparse_hours * 3600)
    # the floor job and ours in JVMs of the same heap, collector and JIT (flink.local_heap, local_gc,
    # local_jit as for a backfill)
    cfg = load_config(args.config)
    set_local_jvm_options(cfg, bounded=True)
    args.beside = {}  # the broker and Redis: their CPU counts with each job's (bench/thread_cpu.py)
    for name, process in (("broker", "tansu"), ("redis", "redis")):
        pid_file = cfg.state_dir / "run" / f"{process}.pid"
        if pid_file.exists():
            args.beside[name] = int(pid_file.read_text())
    floor = run_floor(args, dense[0], dense[2])
    front_alone = run_front(args, dense[0], dense[2])
    engagement = run_backfill(args, "engagement", *dense, tag)
    engagement_sparse = run_backfill(args, "engagement", *sparse, tag + "-sparse")
    combined = run_backfill(args, "features", *dense, tag)
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "folder", "beside")},
        "floor": floor, "front": front_alone, "engagement": engagement, "engagement_sparse": engagement_sparse, "features": combined,
        "front_share_of_floor": round(front_alone["events_per_s"] / floor["events_per_s"], 3),
        "engagement_share_of_floor": round(engagement["events_per_s"] / floor["events_per_s"], 3),
        "engagement_sparse_share_of_dense": round(engagement_sparse["events_per_s"] / engagement["events_per_s"], 3),
        "engagement_sparse_share_of_dense_to_redis": round(
            engagement_sparse["events_per_s_to_redis"] / engagement["events_per_s_to_redis"], 3),
        "features_share_of_floor": round(combined["events_per_s"] / floor["events_per_s"], 3),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(orjson.dumps({k: v for k, v in result.items() if "share" in k}).decode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
