"""An independent batch computation of regional trends with pandas from the semantics in docs/features.md:
at as-of T (a whole minute), window W holds views with event time in [T - W, T), the previous
window [T - 2W, T - W); top K by score > 0, ties by video id; velocity per hour."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def trend_scores(df: pd.DataFrame, w: dict) -> pd.Series:
    s = w["view"] + w["completion"] * np.minimum(1.0, df["watch_time_ms"] / df["video_duration_ms"])
    return s + w["liked"] * df["liked"] + w["shared"] * df["shared"] + w["commented"] * df["commented"] \
        - w["skipped"] * df["skipped"]


def trends(events: pd.DataFrame, as_of: int, windows_ms, k: int, weights: dict) -> dict:
    d = events.assign(score=trend_scores(events, weights))
    d = pd.concat([d, d.assign(region="GLOBAL")])
    out: dict = {}
    for w in windows_ms:
        label = f"{w // 3_600_000}h" if w % 3_600_000 == 0 else f"{w // 60_000}m"
        cur = d[(d["event_time"] >= as_of - w) & (d["event_time"] < as_of)]
        prev = d[(d["event_time"] >= as_of - 2 * w) & (d["event_time"] < as_of - w)]
        cs = cur.groupby(["region", "video_id"])["score"].sum()
        cv = cur.groupby(["region", "video_id"]).size()
        ps = prev.groupby(["region", "video_id"])["score"].sum()
        for region in d["region"].unique():
            if region not in cs.index.get_level_values(0):
                out.setdefault(region, {})[f"top_{label}"] = []
                continue
            rows = [(float(s), vid) for vid, s in cs[region].items() if s > 0]
            rows.sort(key=lambda r: (-round(r[0], 9), r[1]))
            out.setdefault(region, {})[f"top_{label}"] = [
                {"video": vid, "score": s, "views": int(cv[(region, vid)]),
                 "velocity": (s - float(ps.get((region, vid), 0.0))) / (w / 3_600_000)}
                for s, vid in rows[:k]]
    return out


def compare(expected: dict, actual: dict, rel_tol: float = 1e-9) -> list[str]:
    problems = []
    for region, lists in expected.items():
        got = actual.get(region)
        if got is None:
            problems.append(f"{region}: missing")
            continue
        for name, want in lists.items():
            have = got.get(name) or []
            if [e["video"] for e in have] != [e["video"] for e in want] or any(
                    a["views"] != b["views"] or not math.isclose(a["score"], b["score"], rel_tol=rel_tol)
                    or not math.isclose(a["velocity"], b["velocity"], rel_tol=rel_tol, abs_tol=1e-6)
                    for a, b in zip(have, want)):
                problems.append(f"{region}.{name}: got {have}, expected {want}")
    return problems
