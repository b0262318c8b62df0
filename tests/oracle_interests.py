"""An independent batch computation of user interest vectors with pandas, from the README's
semantics (decayed sums as of the user's newest event time), over raw events and upload events.
Nothing is imported from operators/ or jobs/."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def strength(df: pd.DataFrame, w: dict) -> pd.Series:
    s = w["completion"] * np.minimum(1.0, df["watch_time_ms"] / df["video_duration_ms"])
    s = s + w["liked"] * df["liked"] + w["shared"] * df["shared"] + w["commented"] * df["commented"]
    s = s + w["rewatch"] * np.minimum(df["rewatches"], 5)
    return s - w["fast_skip"] * (df["skipped"] & (df["watch_time_ms"] < w["fast_skip_ms"]))


def interests(events: pd.DataFrame, uploads: pd.DataFrame, tau_ms: int, weights: dict, n: int) -> dict:
    """{user_id: {"top_categories": [[c, w], ...], "top_creators": [...], "events": k,
    "unenriched": u, "as_of": T}} with no eviction and no pruning."""
    meta = uploads.sort_values("upload_time").drop_duplicates("video_id", keep="last")
    d = events.merge(meta[["video_id", "category", "creator_id", "upload_time"]], on="video_id", how="left")
    known = d["upload_time"].notna() & (d["upload_time"] <= d["event_time"])
    d["s"] = strength(d, weights)
    d["T"] = d.groupby("user_id")["event_time"].transform("max")
    d["w"] = d["s"] * np.exp(-(d["T"] - d["event_time"]) / tau_ms)
    out = {}
    for user, g in d.groupby("user_id"):
        k = g[known.loc[g.index]]
        row = {"events": len(g), "unenriched": int(len(g) - len(k)), "as_of": int(g["T"].iloc[0])}
        for col, name in (("category", "top_categories"), ("creator_id", "top_creators")):
            sums = k.groupby(col)["w"].sum()
            ranked = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
            row[name] = [[c, float(v)] for c, v in ranked]
        out[user] = row
    return out


def compare(expected: dict, actual: dict, rel_tol: float = 1e-9) -> list[str]:
    """Differences between two {user: features} maps; ranked lists must match in order (items
    whose weights tie within tolerance may swap)."""
    problems = []
    if set(expected) != set(actual):
        problems.append(f"users: {len(set(expected) - set(actual))} missing, "
                        f"{len(set(actual) - set(expected))} unexpected, e.g. "
                        f"{sorted(set(expected) ^ set(actual))[:5]}")
    for user in sorted(set(expected) & set(actual)):
        want, got = expected[user], actual[user]
        for key in ("events", "unenriched"):
            if want[key] != got.get(key):
                problems.append(f"{user}.{key}: got {got.get(key)}, expected {want[key]}")
        for key in ("top_categories", "top_creators"):
            w, g = want[key], got.get(key) or []
            if len(w) != len(g):
                problems.append(f"{user}.{key}: got {g}, expected {w}")
                continue
            for (wc, wv), (gc, gv) in zip(w, g):
                if not math.isclose(wv, gv, rel_tol=rel_tol, abs_tol=1e-9):
                    problems.append(f"{user}.{key}: got {g}, expected {w}")
                    break
                if wc != gc and not math.isclose(dict(w).get(gc, math.nan), gv, rel_tol=1e-9, abs_tol=1e-9):
                    problems.append(f"{user}.{key}: order got {g}, expected {w}")
                    break
    return problems
