"""Benchmark of every feature job on this machine, alone and all four together, plus the bounded
user state of the interests job.

1. Throughput per job: the same generated stream (N engagement events, Zipf popularity, with its
   upload events) is processed by each job as a backfill (`fyp backfill JOB`, bounded file source,
   embedded mini-cluster, parallelism from the config); events/s = N / the Flink job's net run
   time (it includes task deployment and Python worker start-up, a few seconds). Peak resident
   memory of the process tree (driver, JVM, Python workers) is sampled every 0.5 s.
2. All together: the four backfills started at once on the same machine; events/s = N / the wall
   time until the last one finished; memory = the peak of the sum of their trees.
3. Interest state: a streaming interests job reads U distinct one-time users from Kafka (one view
   each, spread over 60 min of event time); the job's users_created / users_evicted counters
   (Flink REST) give the users holding state, sampled every 0.5 s.
Writes bench/results/feature_jobs.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from bench.engagement import RESULTS, bench_config
from stack import procs
from settings.config import REPO_ROOT
from stack.flink_rest import operator_metric
from fyp.generator import output
from settings.kafka_clients import client_config
from fyp.generator.traffic import TrafficSpec, generate
from stack.daemons import free_port
from jobs.interests import OPERATOR

JOBS = ("engagement", "interests", "trends", "milestones")


class TreeMemory(threading.Thread):
    """Peak of the summed resident memory of some process trees."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.stop = list(pids), 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, sum(procs.tree_rss(p)["total"] for p in self.pids))


def make_inputs(args, folder) -> tuple:
    start = 1_780_000_000_000
    traffic = generate(TrafficSpec(seed=17, start_ms=start, duration_ms=int(args.events / args.event_rate * 1000),
                                   mean_rate=args.event_rate, videos=args.videos, users=args.users, ooo_share=0.02,
                                   max_ooo_ms=500))
    events, uploads = folder / "events.jsonl", folder / "uploads.jsonl"
    output.write_jsonl(events, traffic.payloads)
    output.write_jsonl(uploads, [orjson.dumps(u) for u in traffic.uploads])
    return events, uploads, len(traffic.payloads)


def start_backfill(cfg_path, job, events, uploads, log):
    cmd = [sys.executable, "-m", "fyp.cli", "--config", str(cfg_path), "backfill", job, "--input", str(events)]
    if job in ("interests", "milestones", "spikes"):
        cmd += ["--uploads", str(uploads)]
    return subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=REPO_ROOT)


def stats_of(log) -> dict:
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("{"):
            return orjson.loads(line)
    raise SystemExit(f"no stats in {log}")


def bench_alone(args, tag, events, uploads, n) -> dict:
    out = {}
    for job in args.jobs:
        cfg, path = bench_config(args.config, f"{tag}-{job}", args.parallelism, {})
        log = cfg.state_dir / "bench" / f"{tag}-{job}" / "backfill.log"
        proc = start_backfill(path, job, events, uploads, log)
        mem = TreeMemory([proc.pid])
        mem.start()
        proc.wait()
        mem.stop.set()
        if proc.returncode:
            raise SystemExit(f"{job} failed: see {log}")
        st = stats_of(log)
        out[job] = {"events": n, "job_seconds": st["job_seconds"], "events_per_s": round(n / st["job_seconds"]),
                    "peak_rss_mb": round(mem.peak / 2**20), "updates_consumed": st.get("consumed", st.get("crossings"))}
        print(job, out[job], flush=True)
    return out


def bench_together(args, tag, events, uploads, n) -> dict:
    started, runs = time.monotonic(), []
    for job in args.jobs:
        cfg, path = bench_config(args.config, f"{tag}-all-{job}", args.parallelism, {})
        log = cfg.state_dir / "bench" / f"{tag}-all-{job}" / "backfill.log"
        runs.append((job, start_backfill(path, job, events, uploads, log), log))
    mem = TreeMemory([p.pid for _, p, _ in runs])
    mem.start()
    for job, p, log in runs:
        p.wait()
        if p.returncode:
            raise SystemExit(f"{job} failed: see {log}")
    wall = time.monotonic() - started
    mem.stop.set()
    res = {"jobs": list(args.jobs), "events": n, "wall_seconds": round(wall, 1),
           "events_per_s": round(n / wall), "peak_rss_mb": round(mem.peak / 2**20),
           "job_seconds": {job: stats_of(log)["job_seconds"] for job, _, log in runs}}
    print("together", res, flush=True)
    return res


def bench_interest_state(args, tag) -> dict:
    rest_port = free_port()
    cfg, path = bench_config(args.config, f"{tag}-state", args.parallelism, {"extra": {"rest.port": str(rest_port)}})
    start, span = 1_781_000_000_000, 3_600_000
    payloads = [orjson.dumps({"event_id": f"e{i}", "user_id": f"once-{i}", "video_id": f"v{i % 1000}",
                              "event_time": start + i * span // args.state_users, "region": "US",
                              "watch_time_ms": 5000, "video_duration_ms": 10_000, "liked": False, "shared": False,
                              "commented": False, "skipped": False}) for i in range(args.state_users)]
    payloads.append(orjson.dumps({"event_id": "end", "user_id": "u-end", "video_id": "v0",
                                  "event_time": start + span + 600_000, "region": "US", "watch_time_ms": 1,
                                  "video_duration_ms": 1000, "liked": False, "shared": False, "commented": False,
                                  "skipped": False}))
    output.send(client_config(cfg.kafka), cfg.kafka.topics.engagement, payloads,
                keys=[str(i % 64).encode() for i in range(len(payloads))])
    log = cfg.state_dir / "bench" / f"{tag}-state" / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "fyp.cli", "--config", str(path), "run", "interests", "--fresh",
                             "--no-writer"], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=REPO_ROOT)
    rest, samples, t0 = f"http://127.0.0.1:{rest_port}", [], time.monotonic()
    try:
        while time.monotonic() - t0 < args.state_timeout:
            try:
                c = operator_metric(rest, OPERATOR, "users_created")
                e = operator_metric(rest, OPERATOR, "users_evicted")
            except OSError:
                c = e = None
            if c is not None and e is not None:
                samples.append((time.monotonic() - t0, c, e))
                if c >= args.state_users and e >= args.state_users:
                    break
            time.sleep(0.5)
    finally:
        procs.stop_group_leader(proc)
    live = [c - e for _, c, e in samples]
    res = {"one_time_users": args.state_users, "newcomer_ttl_ms": cfg.interests.newcomer_ttl,
           "event_time_span_ms": span, "created": samples[-1][1] if samples else None,
           "evicted": samples[-1][2] if samples else None, "peak_live": max(live) if live else None,
           # share of the users the job had taken in (it may stop at --state-timeout before all)
           "peak_live_share_of_created": round(max(live) / samples[-1][1], 4) if live and samples[-1][1] else None,
           "seconds": round(samples[-1][0], 1) if samples else None}
    print("interest state", res, flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--event-rate", type=float, default=75_000.0,
                    help="events per second of event time: the live rate the stream stands for")
    ap.add_argument("--videos", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--jobs", nargs="+", default=list(JOBS))
    ap.add_argument("--state-users", type=int, default=1_000_000)
    ap.add_argument("--state-timeout", type=float, default=900)
    ap.add_argument("--skip", nargs="*", default=[], choices=("alone", "together", "state"))
    ap.add_argument("--out", default=str(RESULTS / "feature_jobs.json"))
    args = ap.parse_args()
    tag = f"jobs{int(time.time())}"
    folder = REPO_ROOT / ".fyp" / "bench" / tag
    folder.mkdir(parents=True, exist_ok=True)
    events, uploads, n = make_inputs(args, folder)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "args": {k: v for k, v in vars(args).items() if k != "out"}}
    if "alone" not in args.skip:
        result["alone"] = bench_alone(args, tag, events, uploads, n)
    if "together" not in args.skip:
        result["together"] = bench_together(args, tag, events, uploads, n)
    if "state" not in args.skip:
        result["interest_state"] = bench_interest_state(args, tag)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
