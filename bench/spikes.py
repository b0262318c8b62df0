"""Benchmark of the spike job: throughput and memory, and alert quality on labelled super-spikes.

1. Throughput: the feature-jobs input (N events, Zipf popularity, 20k videos by default) through
   `fyp backfill spikes` (bounded file source, embedded mini-cluster); events/s = N / the Flink
   job's net run time; peak resident memory of the process tree.
2. Alert quality through the job: H hours of generated traffic with S injected super-spikes
   (the generator's labels: an obscure video ramps to a share of all traffic in 15 min) through
   `fyp backfill spikes`; the transitions it writes to the spike-transitions topic are matched to
   the labels (anomaly/spike_eval.py): alert delay in event time from the labelled onset (median,
   p95), and false alerts per hour of traffic. The delay is also given from the minute the
   spiking video's true rate first reached spikes.super_rate (what the rules wait for).
3. Ablation on the same labelled traffic, offline with the same per-video code (operators/spikes
   fed per-minute counts from pandas): the defaults; without the detector's score gate
   (rise_score 0: rates alone); and on harder traffic (spikes peaking at a smaller share).
Writes bench/results/spikes.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from confluent_kafka import Consumer, TopicPartition

from anomaly.spike_eval import alert_quality
from bench.engagement import RESULTS, bench_config
from bench.feature_jobs import TreeMemory, make_inputs, start_backfill, stats_of
from settings.config import REPO_ROOT
from fyp.generator import output
from settings.kafka_clients import client_config
from fyp.generator.traffic import TrafficSpec, generate
from operators import spikes
from operators.spikes import IntervalCounts, SpikeRules
from services.partition_reader import is_end_marker


def run_backfill(args, tag: str, events: Path) -> tuple[dict, int, object]:
    cfg, path = bench_config(args.config, tag, args.parallelism, {})
    log = cfg.state_dir / "bench" / tag / "backfill.log"
    proc = start_backfill(path, "spikes", events, None, log)
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
    return generate(TrafficSpec(seed=seed, start_ms=1_782_000_000_000, duration_ms=int(args.hours * 3_600_000),
                                mean_rate=args.label_rate, videos=args.label_videos, users=50_000, ooo_share=0.02,
                                max_ooo_ms=500, spikes=args.spikes, spike_peak_share=peak_share))


def minute_counts(traffic) -> pd.DataFrame:
    df = pd.DataFrame([e for e in traffic.events if e is not None]).sort_values("event_time", kind="stable")
    df["interval_start"] = df["event_time"] - df["event_time"] % 60_000
    g = df.groupby(["video_id", "interval_start"])
    return pd.DataFrame({"views": g.size(), "regions": g["region"].nunique()}).reset_index()


def replay(counts: pd.DataFrame, rules: SpikeRules, idle_ttl: int) -> list[dict]:
    rows = ((r.video_id, IntervalCounts(int(r.interval_start), int(r.views), int(r.regions)))
            for r in counts.itertuples(index=False))
    return spikes.replay(rows, rules, idle_ttl)[0]


def threshold_delays(counts: pd.DataFrame, transitions: list[dict], labels: list[dict], rate: float) -> list[float]:
    """Minutes from the end of the first minute a labelled video's views reached `rate` to its alert."""
    out = []
    for lab in labels:
        c = counts[(counts.video_id == lab["video_id"]) & (counts.interval_start >= lab["onset_ms"] - 60_000)]
        hit = c[c.views >= rate]
        alert = [t["at"] for t in transitions if t["video_id"] == lab["video_id"] and t["state"] == "super_spike"
                 and t["at"] >= lab["onset_ms"]]
        if len(hit) and alert:
            out.append((min(alert) - (int(hit.interval_start.iloc[0]) + 60_000)) / 60_000)
    return out


def summary(q: dict, extra_delays: list[float] | None = None) -> dict:
    out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in q.items()}
    if extra_delays is not None:
        out["delay_from_super_rate_min_median"] = float(np.median(extra_delays)) if extra_delays else None
        out["delay_from_super_rate_min_p95"] = float(np.percentile(extra_delays, 95)) if extra_delays else None
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--event-rate", type=float, default=75_000.0)
    ap.add_argument("--videos", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--hours", type=float, default=6.0, help="event time of the labelled traffic")
    ap.add_argument("--label-rate", type=float, default=40.0)
    ap.add_argument("--label-videos", type=int, default=3000)
    ap.add_argument("--spikes", type=int, default=12)
    ap.add_argument("--skip", nargs="*", default=[], choices=("throughput", "quality", "ablation"))
    ap.add_argument("--out", default=str(RESULTS / "spikes.json"))
    args = ap.parse_args()
    tag = f"spikes{int(time.time())}"
    folder = REPO_ROOT / ".fyp" / "bench" / tag
    folder.mkdir(parents=True, exist_ok=True)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "args": {k: v for k, v in vars(args).items() if k != "out"}}

    if "throughput" not in args.skip:
        events, _, n = make_inputs(args, folder)
        st, peak, _ = run_backfill(args, f"{tag}-tp", events)
        result["throughput"] = {"events": n, "job_seconds": st["job_seconds"],
                                "events_per_s": round(n / st["job_seconds"]), "peak_rss_mb": round(peak / 2**20)}
        print("throughput", result["throughput"], flush=True)

    traffic = labelled(args, seed=31, peak_share=0.25)
    counts = minute_counts(traffic)
    if "quality" not in args.skip:
        path = folder / "labelled.jsonl"
        output.write_jsonl(path, traffic.payloads)
        st, peak, cfg = run_backfill(args, f"{tag}-q", path)
        transitions = topic_json(client_config(cfg.kafka), cfg.kafka.topics.spike_transitions)
        q = alert_quality(transitions, traffic.spikes, args.hours)
        result["quality_through_job"] = summary(q, threshold_delays(counts, transitions, traffic.spikes,
                                                                     cfg.spikes.super_rate))
        result["quality_through_job"]["events"] = len(traffic.payloads)
        print("quality", result["quality_through_job"], flush=True)

    if "ablation" not in args.skip:
        from settings.config import load_config

        cfg = load_config(args.config)
        rules = SpikeRules.from_config(cfg.spikes)
        variants = {"defaults": rules, "no score gate (rates only)": replace(rules, rise_score=0.0)}
        hard = labelled(args, seed=32, peak_share=0.08)
        hard_counts = minute_counts(hard)
        ab = {}
        for name, r in variants.items():
            for data, (tr, cn) in {"peak 25%": (traffic, counts), "peak 8%": (hard, hard_counts)}.items():
                trs = replay(cn, r, cfg.spikes.idle_ttl)
                ab[f"{name}, {data}"] = summary(alert_quality(trs, tr.spikes, args.hours),
                                                threshold_delays(cn, trs, tr.spikes, r.super_rate))
                print(name, data, ab[f"{name}, {data}"], flush=True)
        result["ablation"] = ab
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
