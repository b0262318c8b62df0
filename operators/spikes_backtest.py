"""`fyp spikes backtest`: engagement events from a file through the spike job's per-video code
(operators/spikes.py), offline, for on-call to see what a config would have raised.

The events take the job's route in file order (jobs/sql.py): the watermark is the newest valid
event time so far minus `engagement.max_out_of_orderness` (as the job emits it on each event); an
event more than `allowed_lateness` behind it is dropped (the job's late topic); one whose emit step
the watermark has passed is a correction, fed alone (one view, one region) when it arrives; the
rest are counted per (video, interval) and fed when the watermark passes the interval's end, as the
job's tumbling window fires. The input is bounded, so no calm-down timer fires after the last event
(as in `fyp backfill spikes`).

What it cannot see: the job takes a window's row and a correction of the same video through two
inputs, and when both are due at once, their order is the job's; the backtest takes the window
first.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from operators.spikes import SUPER_SPIKE, IntervalCounts, SpikeRules, replay
from schemas.engagement import ENGAGEMENT_V1


@dataclass
class Backtest:
    transitions: list[dict]
    events: int = 0  # valid events read
    invalid: int = 0
    late: int = 0
    corrections: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    states: dict = field(default_factory=dict)

    def summary(self) -> dict:
        hours = max((self.last_ms - self.first_ms) / 3_600_000, 1 / 60) if self.first_ms is not None else 0.0
        alerts = [t for t in self.transitions if t["state"] == SUPER_SPIKE]
        return {"events": self.events, "invalid": self.invalid, "late": self.late, "corrections": self.corrections,
                "hours_of_traffic": round(hours, 3), "transitions": len(self.transitions), "alerts": len(alerts),
                "alerts_per_hour": round(len(alerts) / hours, 3) if hours else 0.0,
                "alerts_per_day": round(24 * len(alerts) / hours, 3) if hours else 0.0,
                "videos_alerted": len({t["video_id"] for t in alerts})}


def backtest(lines: Iterable[bytes], rules: SpikeRules, idle_ttl_ms: int, max_out_of_orderness_ms: int,
             allowed_lateness_ms: int, emit_interval_ms: int) -> Backtest:
    n = rules.interval_ms
    out = Backtest([])
    open_counts: dict = {}  # (video, interval start) -> [views, regions set, shares, skips]
    by_end: list = []  # heap of (interval end, video, start): tile intervals not yet fired
    rows = defaultdict(list)  # video -> [(order, IntervalCounts)]
    newest = None
    order = 0

    def fire(watermark):
        nonlocal order
        while by_end and by_end[0][0] - 1 <= watermark:
            _, video, start = heapq.heappop(by_end)
            views, regions, shares, skips = open_counts.pop((video, start))
            rows[video].append((order, IntervalCounts(start, views, len(regions), shares, skips)))
            order += 1

    for line in lines:
        line = line.rstrip(b"\n")
        if not line:
            continue
        try:
            e = ENGAGEMENT_V1.validate(line)
        except Exception:
            out.invalid += 1
            continue
        t = e["event_time"]
        out.events += 1
        out.first_ms = t if out.first_ms is None else min(out.first_ms, t)
        out.last_ms = t if out.last_ms is None else max(out.last_ms, t)
        watermark = None if newest is None else newest - max_out_of_orderness_ms
        if watermark is not None and t + allowed_lateness_ms < watermark:
            out.late += 1
        elif watermark is not None and t - t % emit_interval_ms + emit_interval_ms - 1 <= watermark:
            out.corrections += 1
            rows[e["video_id"]].append((order, IntervalCounts(t - t % n, 1, 1, int(e["shared"]), int(e["skipped"]))))
            order += 1
        else:
            key = (e["video_id"], t - t % n)
            c = open_counts.get(key)
            if c is None:
                c = open_counts[key] = [0, set(), 0, 0]
                heapq.heappush(by_end, (key[1] + n, key[0], key[1]))
            c[0] += 1
            c[1].add(e["region"])
            c[2] += int(e["shared"])
            c[3] += int(e["skipped"])
        newest = t if newest is None else max(newest, t)
        fire(newest - max_out_of_orderness_ms)
    fire(2**63 - 1)  # the end of a bounded input: every window fires
    ordered = ((video, counts) for video in sorted(rows) for _, counts in sorted(rows[video], key=lambda r: r[0]))
    out.transitions, out.states = replay(ordered, rules, idle_ttl_ms)
    return out
