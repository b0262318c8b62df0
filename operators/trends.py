"""Regional trends: per region (and GLOBAL), the top K videos by trend score over each window,
with velocity. The per-view score is declared here; the job sums it per minute in SQL and ranks
in the JVM (jobs/jvm TopBySlidingScore).

Semantics (also in docs/features.md). Time moves in whole minutes (tiles). At as-of time T (a multiple of
a minute) a window of length W holds the views with event time in [T - W, T); the previous window
is [T - 2W, T - W). A view's trend score is

    view + completion * min(1, watch_time / duration) + liked * l + shared * s + commented * c
         - skipped * k                                   (weights in config: trends.weights)

A video's score in a window is the sum over its views; velocity is the change against the
previous window per hour: (score - previous_score) / (W in hours). The list holds the K videos
with the highest positive score, ties broken by video id ascending.
"""
from __future__ import annotations

from dataclasses import dataclass

from operators.exact_sums import fixed_point_sql

GLOBAL = "GLOBAL"
MINUTE_MS = 60_000


@dataclass(frozen=True)
class TrendWeights:
    """Trend score of one view: the weights of its parts (the config's `trends.weights`)."""
    view: float = 1.0
    completion: float = 1.0
    liked: float = 1.0
    shared: float = 2.0
    commented: float = 1.0
    skipped: float = 0.5


def score_sql(w: TrendWeights) -> str:
    """Flink SQL expression of one view's trend score over a validated engagement row, in units of
    operators/exact_sums.py (summed exactly)."""
    return fixed_point_sql(f"CAST({w.view!r} AS DOUBLE)"
            f" + CAST({w.completion!r} AS DOUBLE) * LEAST(CAST(1.0 AS DOUBLE),"
            f" CAST(watch_time_ms AS DOUBLE) / CAST(video_duration_ms AS DOUBLE))"
            f" + CASE WHEN liked THEN CAST({w.liked!r} AS DOUBLE) ELSE 0.0 END"
            f" + CASE WHEN shared THEN CAST({w.shared!r} AS DOUBLE) ELSE 0.0 END"
            f" + CASE WHEN commented THEN CAST({w.commented!r} AS DOUBLE) ELSE 0.0 END"
            f" - CASE WHEN skipped THEN CAST({w.skipped!r} AS DOUBLE) ELSE 0.0 END")
