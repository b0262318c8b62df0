"""Spike alert quality across platform sizes, with one config: generated per-minute counts of a
whole platform (fyp/generator/spike_counts.py: Zipf popularity with drift, daily and weekly
curves, noise beyond Poisson, ordinary uploads, labelled super-spikes of four shapes: step, ramp,
spread from one region, a new upload taking off) at 1, 1K, 10K and 100K events/s, replayed through
the spike job's book (operators/spikes.py `replay`: what the job's Python step runs on each
minute's batch of per-video counts and platform totals, which its windows compute).

Reports per size: recall, false alerts per day (after the alerter's per-video cooldown), alert
delay from the first minute the video's views exceeded ten times its baseline (median, p95) and
from the onset, video-minutes per second of the book, peak memory of this process.
Writes bench/results/spike_quality.json.

    python -m bench.spike_quality [--config C] [--sizes 1,1k,10k,100k] [--seed 1]
                                  [--dispersion 30] [--drift-per-hour 0.15]
                                  [--news-event-at HOURS [--news-event-lift 0.5]]
                                  [--shapes step,ramp,spread,upload[,viral]]

`--news-event-at`: three quarters of the spikes start within 12 hours after one moment (or before
the traffic ends) and the platform's ordinary traffic rises meanwhile, as around a news event.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import orjson

from anomaly.spike_eval import alert_quality
from bench.engagement import RESULTS
from fyp.generator.spike_counts import ALL_SHAPES, SHAPES, CountTrafficSpec, generate_counts
from operators import spikes
from operators.spikes import Interval, SpikeRules
from settings.config import load_config

SIZES = {  # events/s, catalog, hours of traffic (bounded by the replay's time on 2 cores)
    # a quiet platform, as a small network's activity: about one view a minute per active video
    "1": dict(rate=1, videos=10_000, hours=48.0),
    "1k": dict(rate=1_000, videos=3_000, hours=24.0),
    "10k": dict(rate=10_000, videos=10_000, hours=12.0),
    "100k": dict(rate=100_000, videos=20_000, hours=6.0, spikes_per_day=48.0),
}


def run_size(name: str, rules: SpikeRules, cooldown_ms: int, seed: int, **traffic) -> dict:
    spec = CountTrafficSpec(seed=seed, **{**SIZES[name], **traffic})
    started = time.perf_counter()
    traffic = generate_counts(spec)
    generated = time.perf_counter() - started
    ids = np.array(traffic.video_ids, dtype=object)
    intervals = [Interval(start, ids[vi].tolist(), views, regions, traffic.uploaded_at[vi],
                          int(traffic.platform_views[t]), int(traffic.platform_videos[t]))
                 for t, (start, vi, views, regions) in enumerate(traffic.minutes_with_views())]
    started = time.perf_counter()
    transitions, _, _ = spikes.replay(intervals, rules)
    seconds = time.perf_counter() - started
    q = alert_quality(transitions, traffic.labels, spec.hours, cooldown_ms=cooldown_ms)
    q["missed"] = [(lab["shape"], lab["peak_views"]) for lab in traffic.labels if lab["video_id"] in q["missed"]]
    return {"events_per_s": spec.rate, "videos": spec.videos, "hours": spec.hours,
            "video_minutes": traffic.video_minutes, "generate_seconds": round(generated, 1),
            "replay_seconds": round(seconds, 1), "video_minutes_per_s": round(traffic.video_minutes / seconds),
            "shapes": sorted({lab["shape"] for lab in traffic.labels}),
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in q.items()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dispersion", type=float, help="gamma shape of the per video-minute noise (default 30)")
    ap.add_argument("--drift-per-hour", type=float, help="drift of log popularity per hour (default 0.15)")
    ap.add_argument("--news-event-at", type=float,
                    help="hours after the start: a news event clusters the spikes after it (default: none)")
    ap.add_argument("--news-event-lift", type=float,
                    help="the platform's ordinary traffic rises by this share during the event (default 0.5)")
    ap.add_argument("--shapes", help="the spikes' shapes, in turn, of " + ",".join(ALL_SHAPES)
                    + " (default: " + ",".join(SHAPES) + ")")
    ap.add_argument("--out", default=str(RESULTS / "spike_quality.json"))
    args = ap.parse_args()
    cfg = load_config(args.config)
    rules = SpikeRules.from_config(cfg.spikes)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "config": cfg.source, "seed": args.seed, "sizes": {}}
    traffic = {k: v for k, v in (("dispersion", args.dispersion), ("drift_per_hour", args.drift_per_hour),
                                 ("event_at_hours", args.news_event_at), ("event_lift", args.news_event_lift),
                                 ("shapes", tuple(args.shapes.split(",")) if args.shapes else None))
               if v is not None}
    if not set(traffic.get("shapes", ())) <= set(ALL_SHAPES):
        ap.error(f"--shapes: of {', '.join(ALL_SHAPES)}")
    result["traffic"] = traffic  # what differs from CountTrafficSpec's defaults
    for name in args.sizes.split(","):
        result["sizes"][name] = run_size(name, rules, cfg.alerts.cooldown, args.seed, **traffic)
        print(name, result["sizes"][name], flush=True)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
