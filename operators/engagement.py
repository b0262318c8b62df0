"""Per-video engagement: what each view contributes, and the features derived from window sums.

A view contributes the metric vector METRICS; sums over a window give the features of
FEATURE_NAMES for that window:
  views_W, likes_W, shares_W, comments_W, skips_W, watch_time_ms_W    sums
  completion_rate_W   mean over views of min(1, watch_time_ms / video_duration_ms)
  engagement_rate_W   (likes + shares + comments) / views
  engagement_score_W  sum over views of w1*ln(1 + watch_time_s) + w2*liked + w3*shared
                      + w4*commented - w5*skipped
Rates of a window with no views are 0. completion_sum and score_sum are summed exactly, in units
of operators/exact_sums.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from operators.exact_sums import SCALE, fixed_point_sql

METRICS = ("views", "likes", "shares", "comments", "skips", "watch_time_ms", "completion_sum", "score_sum")

FEATURE_BASES = ("views", "likes", "shares", "comments", "skips", "watch_time_ms",
                 "completion_rate", "engagement_rate", "engagement_score")
INT_BASES = frozenset(FEATURE_BASES[:6])


@dataclass(frozen=True)
class Weights:
    watch_time: float
    liked: float
    shared: float
    commented: float
    skipped: float


def window_labels(windows_ms) -> list[str]:
    """Feature-name suffixes: 1h, 6h, 24h (hours, never days, so names stay stable)."""
    return [f"{w // 3_600_000}h" if w % 3_600_000 == 0 else f"{w // 60_000}m" for w in windows_ms]


def feature_names(windows_ms) -> list[str]:
    """Feature names in their canonical order: every base for the first window, then the next."""
    return [f"{base}_{label}" for label in window_labels(windows_ms) for base in FEATURE_BASES]


def sum_column(window: int, metric: str) -> str:
    """The column of a window's sum of a metric, in the rows of the sliding-sums operator."""
    return f"w{window}_{metric}"


def feature_sql(n_windows: int, ratio_fn: str) -> list[str]:
    """Flink SQL expressions of the feature values (in feature_names order) over the columns
    sum_column(w, metric). `ratio_fn(a, b, scale)` is the JVM's a / (b * scale), correctly rounded,
    0.0 when b is 0 (rates of a window with no views are 0)."""
    out = []
    for w in range(n_windows):
        c = {m: sum_column(w, m) for m in METRICS}
        out.extend(c[m] for m in METRICS[:6])
        out.append(f"{ratio_fn}({c['completion_sum']}, {c['views']}, {SCALE})")
        out.append(f"{ratio_fn}({c['likes']} + {c['shares']} + {c['comments']}, {c['views']}, 1)")
        out.append(f"CASE WHEN {c['views']} > 0 THEN {ratio_fn}({c['score_sum']}, 1, {SCALE}) ELSE 0.0 END")
    return out


def contribution_sql(w: Weights) -> dict[str, str]:
    """Flink SQL expressions, over a validated engagement row, for each metric of one view.
    The job sums these per tile in the JVM, so Python only ever sees tile sums."""
    return {
        "views": "CAST(1 AS BIGINT)",
        "likes": "CAST(CASE WHEN liked THEN 1 ELSE 0 END AS BIGINT)",
        "shares": "CAST(CASE WHEN shared THEN 1 ELSE 0 END AS BIGINT)",
        "comments": "CAST(CASE WHEN commented THEN 1 ELSE 0 END AS BIGINT)",
        "skips": "CAST(CASE WHEN skipped THEN 1 ELSE 0 END AS BIGINT)",
        "watch_time_ms": "watch_time_ms",
        "completion_sum": fixed_point_sql(
            "LEAST(CAST(1.0 AS DOUBLE), CAST(watch_time_ms AS DOUBLE) / CAST(video_duration_ms AS DOUBLE))"),
        "score_sum": fixed_point_sql(
            f"CAST({w.watch_time!r} AS DOUBLE) * LN(1.0 + CAST(watch_time_ms AS DOUBLE) / 1000.0)"
            f" + CASE WHEN liked THEN CAST({w.liked!r} AS DOUBLE) ELSE 0.0 END"
            f" + CASE WHEN shared THEN CAST({w.shared!r} AS DOUBLE) ELSE 0.0 END"
            f" + CASE WHEN commented THEN CAST({w.commented!r} AS DOUBLE) ELSE 0.0 END"
            f" - CASE WHEN skipped THEN CAST({w.skipped!r} AS DOUBLE) ELSE 0.0 END"),
    }
