"""Benchmark of the spike job: throughput and memory, and alert quality on labelled super-spikes.

1. Throughput: the feature-jobs input (by default 6 h of traffic at 139 events/s over 50,000
   videos with Zipf popularity: many intervals, as a platform's spike job runs, not seconds of
   dense traffic whose run is mostly start-up) through `fyp backfill spikes` (bounded file sources,
   embedded mini-cluster); events/s and video-minutes/s (the (video, minute) pairs with views, the
   book's input) over the Flink job's net run time; peak resident memory of the process tree. The
   first third of the same input runs too: the rest's video-minutes over the time the whole took
   beyond it are the job's rate once running (`running_video_minutes_per_s`).
2. Alert quality through the job: H hours of generated traffic with S injected super-spikes
   (the generator's labels: an obscure video ramps to a share of all traffic in 15 min; no new
   uploads) through
   `fyp backfill spikes`; the transitions it writes to the spike-transitions topic are matched to
   the labels (anomaly/spike_eval.py): alert delay in event time from the labelled onset (median,
   p95), and false alerts per hour of traffic.
Quality across platform sizes with the same config: bench/spike_quality.py.
Writes bench/results/spikes.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from anomaly.spike_eval import alert_quality
from bench.engagement import RESULTS, bench_config
from bench.feature_jobs import TreeMemory, make_inputs, start_backfill, stats_of
from settings.config import REPO_ROOT
from fyp.generator import output
from settings.kafka_clients import client_config
from fyp.generator.traffic import TrafficSpec, generate
from services.partition_reader import is_end_marker


def run_backfill(args, tag: str, events: Path, uploads: Path) -> tuple[dict, int, object]:
    cfg, path = bench_config(args.config, tag, args.parallelism, {})
    log = cfg.state_dir / "bench" / tag / "backfill.log"
    proc = start_backfill(path, "spikes", events, uploads, log)
    mem = TreeMemory([proc.pid])
    mem.start()
    proc.wait()
    mem.stop.set()
    if proc.returncode:
        raise SystemExit(f"spikes backfill failed: see {log}")
    return stats_of(log), mem.peak, cfg


def topic_json(kafka: dict, topic: str, idle_s: float = 3.0) -> list[dict]:
    c = Consumer({**kafka, "group.id": "bench-reader", "enable.auto.commit": False})
    parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle_s:
        for m in c.consume(1000, 0.5):
            if not m.error() and not is_end_marker(m):
                out.append(orjson.loads(m.value()))
                last = time.monotonic()
    c.close()
    return out


def labelled(args, seed: int, peak_share: float):
    # no uploads during the run: this generator gives a new video its full popularity in its first
    # minute, an upload taking off, which the rules page and these labels do not count
    # (bench/spike_quality.py labels that case)
    return generate(TrafficSpec(seed=seed, start_ms=1_782_000_000_000, duration_ms=int(args.hours * 3_600_000),
                                mean_rate=args.label_rate, videos=args.label_videos, users=50_000, ooo_share=0.02,
                                max_ooo_ms=500, spikes=args.spikes, spike_peak_share=peak_share, new_video_share=0.0))


def video_minutes(events_path: Path) -> int:
    """(video, minute) pairs with views in the file: the spike book's input."""
    pairs = set()
    with open(events_path, "rb") as f:
        for line in f:
            try:
                e = orjson.loads(line)
                pairs.add((e["video_id"], int(e["event_time"]) // 60_000))
            except Exception:
                continue  # malformed: the job dead-letters it
    return len(pairs)


def write_first_lines(src: Path, dst: Path, n: int) -> None:
    with open(src, "rb") as f, open(dst, "wb") as out:
        for _, line in zip(range(n), f):
            out.write(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--event-rate", type=float, default=139.0)
    ap.add_argument("--videos", type=int, default=50_000)
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--hours", type=float, default=6.0, help="event time of the labelled traffic")
    ap.add_argument("--label-rate", type=float, default=40.0)
    ap.add_argument("--label-videos", type=int, default=3000)
    ap.add_argument("--spikes", type=int, default=12)
    ap.add_argument("--skip", nargs="*", default=[], choices=("throughput", "quality"))
    ap.add_argument("--out", default=str(RESULTS / "spikes.json"))
    args = ap.parse_args()
    tag = f"spikes{int(time.time())}"
    folder = REPO_ROOT / ".fyp" / "bench" / tag
    folder.mkdir(parents=True, exist_ok=True)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "args": {k: v for k, v in vars(args).items() if k != "out"}}

    if "throughput" not in args.skip:
        events, uploads, n = make_inputs(args, folder)
        st, peak, _ = run_backfill(args, f"{tag}-tp", events, uploads)
        vm = video_minutes(events)
        result["throughput"] = {"events": n, "video_minutes": vm, "job_seconds": st["job_seconds"],
                                "events_per_s": round(n / st["job_seconds"]),
                                "video_minutes_per_s": round(vm / st["job_seconds"]), "peak_rss_mb": round(peak / 2**20)}
        # the first third of the same traffic: what the whole input took beyond it is the job's
        # rate once running, without the seconds every run spends starting (tasks, Python worker)
        prefix = folder / "events_first_third.jsonl"
        write_first_lines(events, prefix, n // 3)
        st_p, _, _ = run_backfill(args, f"{tag}-tp3", prefix, uploads)
        vm_p, extra_s = video_minutes(prefix), st["job_seconds"] - st_p["job_seconds"]
        result["throughput"].update(first_third_job_seconds=st_p["job_seconds"], first_third_video_minutes=vm_p,
                                    running_video_minutes_per_s=round((vm - vm_p) / extra_s) if extra_s > 0 else None)
        print("throughput", result["throughput"], flush=True)

    if "quality" not in args.skip:
        traffic = labelled(args, seed=31, peak_share=0.25)
        path, uploads = folder / "labelled.jsonl", folder / "labelled_uploads.jsonl"
        output.write_jsonl(path, traffic.payloads)
        output.write_jsonl(uploads, [orjson.dumps(u) for u in traffic.uploads])
        st, peak, cfg = run_backfill(args, f"{tag}-q", path, uploads)
        transitions = topic_json(client_config(cfg.kafka), cfg.kafka.topics.spike_transitions)
        q = alert_quality(transitions, traffic.spikes, args.hours)
        result["quality_through_job"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in q.items()}
        result["quality_through_job"]["events"] = len(traffic.payloads)
        print("quality", result["quality_through_job"], flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
