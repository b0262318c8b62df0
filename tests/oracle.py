"""An independent batch computation of the engagement features with pandas.

It implements the window semantics of docs/features.md directly over the raw events (no tiles, no running
sums, nothing imported from operators/): for as-of time T, window W holds the events with
event_time in [ceil(T / tile) * tile - W, T). Lateness is decided from the arrival order: an event
is dropped as late when event_time + allowed_lateness < (max event time seen before it) - delay.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from schemas.engagement import ENGAGEMENT_V1
from schemas.record import Invalid

BASES = ("views", "likes", "shares", "comments", "skips", "watch_time_ms",
         "completion_rate", "engagement_rate", "engagement_score")


def valid_events(payloads) -> pd.DataFrame:
    """Valid events in arrival order (column `arrival` = position in the stream)."""
    rows = []
    for i, p in enumerate(payloads):
        try:
            e = ENGAGEMENT_V1.validate(p)
        except Invalid:
            continue
        e["arrival"] = i
        rows.append(e)
    return pd.DataFrame(rows)


def mark_too_late(df: pd.DataFrame, delay_ms: int, allowed_lateness_ms: int) -> pd.Series:
    seen_max = df["event_time"].cummax().shift(1).fillna(-np.inf)
    return df["event_time"] + allowed_lateness_ms < seen_max - delay_ms


def features(df: pd.DataFrame, as_of: int, tile_ms: int, windows_ms, weights: dict) -> pd.DataFrame:
    """One row per video that has any event in the longest window; columns = feature names."""
    d = df.copy()
    d["completion"] = np.minimum(1.0, d["watch_time_ms"] / d["video_duration_ms"])
    d["score"] = (weights["watch_time"] * np.log1p(d["watch_time_ms"] / 1000.0)
                  + weights["liked"] * d["liked"] + weights["shared"] * d["shared"]
                  + weights["commented"] * d["commented"] - weights["skipped"] * d["skipped"])
    tile_end = math.ceil(as_of / tile_ms) * tile_ms
    out = {}
    for w in windows_ms:
        label = f"{w // 3_600_000}h" if w % 3_600_000 == 0 else f"{w // 60_000}m"
        inw = d[(d["event_time"] >= tile_end - w) & (d["event_time"] < as_of)]
        g = inw.groupby("video_id")
        agg = pd.DataFrame({
            "views": g.size(),
            "likes": g["liked"].sum(),
            "shares": g["shared"].sum(),
            "comments": g["commented"].sum(),
            "skips": g["skipped"].sum(),
            "watch_time_ms": g["watch_time_ms"].sum(),
            "completion_rate": g["completion"].mean(),
            "engagement_score": g["score"].sum(),
        })
        agg["engagement_rate"] = (agg["likes"] + agg["shares"] + agg["comments"]) / agg["views"]
        for base in BASES:
            out[f"{base}_{label}"] = agg[base]
    res = pd.DataFrame(out).fillna(0)
    for c in res.columns:
        if not c.startswith(("completion_rate", "engagement_rate", "engagement_score")):
            res[c] = res[c].astype(np.int64)
    return res


def compare(expected: pd.DataFrame, actual: dict, rel_tol: float = 1e-9) -> list[str]:
    """Differences between the oracle and {video_id: {feature: value}}; empty when equal."""
    problems = []
    missing = sorted(set(expected.index) - set(actual))
    if missing:
        problems.append(f"{len(missing)} videos missing from Redis, e.g. {missing[:5]}")
    extra = sorted(set(actual) - set(expected.index))
    if extra:
        problems.append(f"{len(extra)} unexpected videos in Redis, e.g. {extra[:5]}")
    for vid in expected.index:
        if vid not in actual:
            continue
        for col in expected.columns:
            want, got = expected.at[vid, col], actual[vid].get(col)
            if got is None:
                problems.append(f"{vid}.{col}: missing (expected {want})")
            elif isinstance(want, (int, np.integer)) or col.startswith(("views", "likes", "shares", "comments", "skips", "watch_time")):
                if int(got) != int(want):
                    problems.append(f"{vid}.{col}: got {got}, expected {want}")
            elif not math.isclose(float(got), float(want), rel_tol=rel_tol, abs_tol=1e-9):
                problems.append(f"{vid}.{col}: got {got!r}, expected {want!r}")
    return problems


def milestone_crossings(events: pd.DataFrame, uploads: list[dict], thresholds) -> dict:
    """{"<video>:<milestone>": (crossed_at, creator)}: the view that brings a video's total to a
    threshold, counting views in event-time order (valid for input with no view behind the
    watermark)."""
    creators = pd.DataFrame(uploads).set_index("video_id")["creator_id"].to_dict()
    out = {}
    for vid, g in events.groupby("video_id"):
        times = sorted(g["event_time"])
        for m in thresholds:
            if len(times) >= m:
                out[f"{vid}:{m}"] = (times[m - 1], creators.get(vid))
    return out
