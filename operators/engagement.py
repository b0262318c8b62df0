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



@dataclass(frozen=True)
class Derived:
    """A feature of one window from its sums: sum(numerator metrics) / (denominator metric's sum
    * scale), the nearest double (the JVM's ExactDivision), 0.0 when the denominator's sum is 0;
    with no denominator, / scale, and 0.0 when `zero_unless` has no events in the window. A plain
    window sum (an integer) when `sum_of` is set."""
    name: str
    sum_of: str = ""
    numerator: tuple[str, ...] = ()
    denominator: str = ""
    scale: int = 1
    zero_unless: str = ""

    @property
    def dtype(self) -> str:
        return "int" if self.sum_of else "float"


# The group's features per window, in order: declared once here; the job compiles them into the
# parameters of the JVM operator (spec), the feature group's names and types come from them.
FEATURES = (
    Derived("views", sum_of="views"), Derived("likes", sum_of="likes"), Derived("shares", sum_of="shares"),
    Derived("comments", sum_of="comments"), Derived("skips", sum_of="skips"),
    Derived("watch_time_ms", sum_of="watch_time_ms"),
    Derived("completion_rate", numerator=("completion_sum",), denominator="views", scale=SCALE),
    Derived("engagement_rate", numerator=("likes", "shares", "comments"), denominator="views"),
    Derived("engagement_score", numerator=("score_sum",), scale=SCALE, zero_unless="views"),
)
FEATURE_BASES = tuple(f.name for f in FEATURES)
INT_BASES = frozenset(f.name for f in FEATURES if f.dtype == "int")


@dataclass(frozen=True)
class ScoreWeights:
    """Weights of a view's parts in the engagement score (the config's `engagement.score_weights`)."""
    watch_time: float = 1.0
    liked: float = 2.0
    shared: float = 3.0
    commented: float = 2.5
    skipped: float = 1.5


def window_labels(windows_ms) -> list[str]:
    """Feature-name suffixes: 1h, 6h, 24h (hours, never days, so names stay stable)."""
    return [f"{w // 3_600_000}h" if w % 3_600_000 == 0 else f"{w // 60_000}m" for w in windows_ms]


def feature_names(windows_ms) -> list[str]:
    """Feature names in their canonical order: every base for the first window, then the next."""
    return [f"{base}_{label}" for label in window_labels(windows_ms) for base in FEATURE_BASES]


def operator_spec(features=FEATURES) -> str:
    """The features as the JVM operator (SlidingTileSums) reads them, one per '|':
    's:<metric index>' for a sum, 'r:<numerator indexes, comma-separated>:<denominator index or
    -1>:<scale>:<zero-unless index or -1>' for a ratio."""
    idx = {m: i for i, m in enumerate(METRICS)}
    out = []
    for f in features:
        if f.sum_of:
            out.append(f"s:{idx[f.sum_of]}")
        else:
            out.append(f"r:{','.join(str(idx[m]) for m in f.numerator)}:{idx.get(f.denominator, -1)}:"
                       f"{f.scale}:{idx.get(f.zero_unless, -1)}")
    return "|".join(out)


def contribution_sql(w: ScoreWeights) -> dict[str, str]:
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
