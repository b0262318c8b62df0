"""Independent batch computation of the spike job's per-video input and outputs: per (video,
interval) view counts and distinct regions straight from the generated events with pandas, then
the same per-video state code (operators/spikes.py) fed in event-time order, with the job's
expiry rule. The job gets its counts from Flink SQL windows over the parsed stream; equality of
the two checks the job's windowing, keying, gap handling, state and timers."""
from __future__ import annotations

import pandas as pd

from operators.spikes import NORMAL, IntervalCounts, SpikeRules, VideoSpikes


def interval_counts(events: list[dict], interval_ms: int) -> pd.DataFrame:
    """events: valid engagement dicts (on time). One row per (video, interval) with views."""
    df = pd.DataFrame([e for e in events if e is not None])
    df["interval_start"] = df["event_time"] - df["event_time"] % interval_ms
    g = df.groupby(["video_id", "interval_start"])
    out = pd.DataFrame({"views": g.size(), "regions": g["region"].nunique(),
                        "shares": g["shared"].sum(), "skips": g["skipped"].sum()}).reset_index()
    return out.sort_values(["video_id", "interval_start"], kind="stable")


def replay(counts: pd.DataFrame, rules: SpikeRules, idle_ttl_ms: int, end_watermark: int | None = None):
    """Returns (transitions with video_id, final VideoSpikes per video). A bounded run ends with
    no timer firing after the last interval (end_watermark None); a stream whose watermark
    stopped at `end_watermark` has fired every calm timer up to it."""
    transitions, states = [], {}
    for video, rows in counts.groupby("video_id", sort=True):
        st = None
        for r in rows.itertuples(index=False):
            if st is not None and st.expired(int(r.interval_start), idle_ttl_ms):
                st = None
            if st is None:
                st = VideoSpikes(rules)
            for t in st.feed(IntervalCounts(int(r.interval_start), int(r.views), int(r.regions),
                                            int(r.shares), int(r.skips))):
                transitions.append({"video_id": video, **t})
        deadline = st.as_of + (rules.calm_intervals - st.calm) * rules.interval_ms - 1
        if end_watermark is not None and st.state != NORMAL and deadline <= end_watermark:
            transitions += [{"video_id": video, **t} for t in st.idle_until(deadline + 1)]
        states[video] = st
    return transitions, states


def spiking(states: dict) -> dict:
    return {v: st for v, st in states.items() if st.state != NORMAL}
