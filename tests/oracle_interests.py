"""An independent batch computation of user interest vectors with pandas, from docs/features.md's
semantics ("User interests"): per user, sessions split where a view comes more than the session
TTL after the previous one; per item, runs split where a view of it comes more than
`forget_after` after the previous one; decayed sums as of the session's newest view over the
item's last run; items with |weight| below `prune_below` left out. Nothing is imported from
operators/ or jobs/."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def strength(df: pd.DataFrame, w: dict) -> pd.Series:
    s = w["completion"] * np.minimum(1.0, df["watch_time_ms"] / df["video_duration_ms"])
    s = s + w["liked"] * df["liked"] + w["shared"] * df["shared"] + w["commented"] * df["commented"]
    s = s + w["rewatch"] * np.minimum(df["rewatches"], 5)
    return s - w["fast_skip"] * (df["skipped"] & (df["watch_time_ms"] < w["fast_skip_ms"]))


def _last_session(times: np.ndarray, min_events: int, newcomer_ttl: int, idle_ttl: int) -> int:
    """Index (into the sorted times) where the user's last session starts."""
    start = 0
    for k in range(1, len(times)):
        ttl = idle_ttl if k - start >= min_events else newcomer_ttl
        if times[k] - times[k - 1] > ttl:
            start = k
    return start


def _ranked(g: pd.DataFrame, col: str, T: int, tau: float, forget_after: int, prune_below: float, n: int):
    sums = {}
    for item, views in g.groupby(col):
        t = views["event_time"].to_numpy()  # sorted: g is
        gaps = np.flatnonzero(np.diff(t) > forget_after)
        run = views.iloc[gaps[-1] + 1:] if len(gaps) else views
        w = float((run["s"] * np.exp(-(T - run["event_time"]) / tau)).sum())
        if abs(w) >= prune_below:
            sums[item] = w
    return [[c, v] for c, v in sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def interests(events: pd.DataFrame, uploads: pd.DataFrame, i) -> dict:
    """{user_id: {"top_categories": [[c, w], ...], "top_creators": [...], "events": k,
    "unenriched": u, "as_of": T}}; `i` is the config's interests section."""
    meta = uploads.sort_values("upload_time").drop_duplicates("video_id", keep="last")
    d = events.merge(meta[["video_id", "category", "creator_id", "upload_time"]], on="video_id", how="left")
    d["known"] = d["upload_time"].notna() & (d["upload_time"] <= d["event_time"])
    d["s"] = strength(d, vars(i.weights))
    d = d.sort_values(["user_id", "event_time"], kind="stable")
    out = {}
    for user, g in d.groupby("user_id", sort=False):
        g = g.iloc[_last_session(g["event_time"].to_numpy(), i.min_events, i.newcomer_ttl, i.idle_ttl):]
        T = int(g["event_time"].max())
        k = g[g["known"]]
        row = {"events": len(g), "unenriched": int(len(g) - len(k)), "as_of": T}
        for col, name in (("category", "top_categories"), ("creator_id", "top_creators")):
            row[name] = _ranked(k, col, T, i.decay, i.forget_after, i.prune_below, i.top_n)
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
