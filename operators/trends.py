"""Regional trends: per region (and GLOBAL), the top K videos by trend score over each window,
with velocity. Plain Python over per-minute sums; the job feeds it and emits its lists.

Semantics (also in the README). Time moves in whole minutes (tiles). At as-of time T (a multiple of
a minute) a window of length W holds the views with event time in [T - W, T); the previous window
is [T - 2W, T - W). A view's trend score is

    view + completion * min(1, watch_time / duration) + liked * l + shared * s + commented * c
         - skipped * k                                   (weights in config: trends.weights)

A video's score in a window is the sum over its views; velocity is the change against the
previous window per hour: (score - previous_score) / (W in hours). The list holds the K videos
with the highest positive score, ties broken by video id ascending.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from operators.exact_sums import fixed_point_sql, from_units
from operators.sliding_tiles import SlidingTiles, TileGeometry

GLOBAL = "GLOBAL"
MINUTE_MS = 60_000
V_SCORE, V_VIEWS = 0, 1


@dataclass(frozen=True)
class TrendWeights:
    view: float
    completion: float
    liked: float
    shared: float
    commented: float
    skipped: float


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


def geometry(windows_ms) -> TileGeometry:
    """Minute tiles; each window W and its double 2W (for the previous window)."""
    doubled = sorted({w for w in windows_ms} | {2 * w for w in windows_ms})
    return TileGeometry(MINUTE_MS, MINUTE_MS, tuple(doubled))


@dataclass
class RegionTrends:
    """Per region: a SlidingTiles of (score, views) per video over minute tiles."""

    as_of: int = 0
    videos: dict = field(default_factory=dict)

    def add(self, geo: TileGeometry, video: str, minute_start: int, score: int, views: int) -> None:
        st = self.videos.get(video)
        if st is None:
            st = self.videos[video] = SlidingTiles(2, len(geo.windows_ms))
        st.add(geo, minute_start // MINUTE_MS, (score, views), self.as_of)

    def advance(self, geo: TileGeometry, as_of: int) -> None:
        """Moves every video's windows to `as_of` and forgets videos with nothing left."""
        self.as_of = max(self.as_of, as_of)
        for video in list(self.videos):
            st = self.videos[video]
            st.advance(geo, self.as_of)
            if st.is_empty():
                del self.videos[video]

    def top(self, geo: TileGeometry, window_ms: int, k: int) -> list[dict]:
        w = geo.windows_ms.index(window_ms)
        w2 = geo.windows_ms.index(2 * window_ms)
        hours = window_ms / 3_600_000
        ranked = []
        for video, st in self.videos.items():
            score, views = st.sums[w][V_SCORE], st.sums[w][V_VIEWS]
            if score > 0:
                prev = st.sums[w2][V_SCORE] - score
                ranked.append((-score, video, views, prev))
        ranked.sort()  # exact integer scores: ties (equal units) go to the smaller video id
        return [{"video": v, "score": from_units(-s), "views": int(n), "velocity": from_units(-s - prev) / hours}
                for s, v, n, prev in ranked[:k]]
