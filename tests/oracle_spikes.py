"""Independent batch computation of the spike job's per-video input and outputs: per (video,
interval) view counts and distinct regions straight from the generated events with pandas, then
the same per-video state code (operators/spikes.py) fed in event-time order, with the job's
expiry rule. The job gets its counts from Flink SQL windows over the parsed stream; equality of
the two checks the job's windowing, keying, gap handling, state and timers."""
from __future__ import annotations

import pandas as pd

from operators import spikes
from operators.spikes import NORMAL, IntervalCounts, SpikeRules


def interval_counts(events: list[dict], interval_ms: int) -> pd.DataFrame:
    """events: valid engagement dicts (on time). One row per (video, interval) with views."""
    df = pd.DataFrame([e for e in events if e is not None])
    df["interval_start"] = df["event_time"] - df["event_time"] % interval_ms
    g = df.groupby(["video_id", "interval_start"])
    out = pd.DataFrame({"views": g.size(), "regions": g["region"].nunique(),
                        "shares": g["shared"].sum(), "skips": g["skipped"].sum()}).reset_index()
    return out.sort_values(["video_id", "interval_start"], kind="stable")


def replay(counts: pd.DataFrame, rules: SpikeRules, idle_ttl_ms: int, end_watermark: int | None = None):
    """(transitions, final state per video) of operators.spikes.replay over the pandas counts."""
    rows = ((r.video_id, IntervalCounts(int(r.interval_start), int(r.views), int(r.regions), int(r.shares),
                                        int(r.skips))) for r in counts.itertuples(index=False))
    return spikes.replay(rows, rules, idle_ttl_ms, end_watermark)


def spiking(states: dict) -> dict:
    return {v: st for v, st in states.items() if st.state != NORMAL}
