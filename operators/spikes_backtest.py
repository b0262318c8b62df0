"""`fyp spikes backtest`: engagement events (and upload events) from files through the spike job's
code (operators/spikes.py), offline, for on-call to see what a config would have raised.

The events take the job's route in file order (jobs/sql.py): the watermark is the newest valid
event time so far minus `engagement.max_out_of_orderness` (as the job emits it on each event); an
event more than `allowed_lateness` behind it is dropped (the job's late topic); one whose interval
the watermark has passed (its window has fired) is a correction, fed alone (one view) when it
arrives; the rest are counted per (video, interval), and an interval is stepped, with the
platform's totals, when the watermark passes its end, as the job's windows fire. A view's upload time is that of the video's
newest upload at or before the view (the job's metadata join), unknown without one. The input is
bounded: every interval is stepped at its end.

What it cannot see: the job takes an interval's batch and a correction through two inputs, and
when both are due at once, their order is the job's; the backtest takes the batch first.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from operators.spikes import SUPER_SPIKE, UNKNOWN_UPLOAD, Interval, SpikeBook, SpikeRules
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
    last_updates: dict = field(default_factory=dict)  # video -> its newest feature update

    def summary(self) -> dict:
        hours = max((self.last_ms - self.first_ms) / 3_600_000, 1 / 60) if self.first_ms is not None else 0.0
        alerts = [t for t in self.transitions if t["state"] == SUPER_SPIKE]
        return {"events": self.events, "invalid": self.invalid, "late": self.late, "corrections": self.corrections,
                "hours_of_traffic": round(hours, 3), "transitions": len(self.transitions), "alerts": len(alerts),
                "alerts_per_hour": round(len(alerts) / hours, 3) if hours else 0.0,
                "alerts_per_day": round(24 * len(alerts) / hours, 3) if hours else 0.0,
                "videos_alerted": len({t["video_id"] for t in alerts})}


class UploadTimes:
    """As-of lookup of a video's upload time: its newest upload at or before a view."""

    def __init__(self, uploads: Iterable[dict] = ()):
        self.times = defaultdict(list)
        for u in uploads:
            bisect.insort(self.times[u["video_id"]], int(u["upload_time"]))

    def as_of(self, video: str, t: int) -> int:
        times = self.times.get(video)
        if not times:
            return UNKNOWN_UPLOAD
        i = bisect.bisect_right(times, t)
        return times[i - 1] if i else UNKNOWN_UPLOAD


def interval_of(start: int, per_video: dict) -> Interval:
    """One interval's batch from {video: [views, regions set, upload time]}."""
    ids = sorted(per_video)
    views = np.array([per_video[v][0] for v in ids], dtype=np.int64)
    return Interval(start, ids, views, np.array([len(per_video[v][1]) for v in ids], dtype=np.int64),
                    np.array([per_video[v][2] for v in ids], dtype=np.int64), int(views.sum()), len(ids))


def backtest(lines: Iterable[bytes], rules: SpikeRules, max_out_of_orderness_ms: int, allowed_lateness_ms: int,
             uploads: UploadTimes | None = None) -> Backtest:
    n = rules.interval_ms
    uploads = uploads or UploadTimes()
    out = Backtest([])
    book = SpikeBook(rules)
    open_intervals: dict = {}  # interval start -> {video: [views, regions, upload time]}
    newest = None

    def take(updates):
        for u in updates:
            out.last_updates[u.video_id] = u

    def fire(watermark):
        for start in sorted(s for s in open_intervals if s + n - 1 <= watermark):
            transitions, updates = book.step(interval_of(start, open_intervals.pop(start)))
            out.transitions.extend(transitions)
            take(updates)

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
        elif watermark is not None and t - t % n + n - 1 <= watermark:
            out.corrections += 1
            take([u for u in [book.correct(e["video_id"], t - t % n, 1)] if u is not None])
        else:
            c = open_intervals.setdefault(t - t % n, {}).setdefault(e["video_id"], [0, set(), UNKNOWN_UPLOAD])
            c[0] += 1
            c[1].add(e["region"])
            c[2] = max(c[2], uploads.as_of(e["video_id"], t))
        newest = t if newest is None else max(newest, t)
        fire(newest - max_out_of_orderness_ms)
    fire(2**63 - 1)  # the end of a bounded input: every window fires
    return out
