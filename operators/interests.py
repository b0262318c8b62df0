"""Per-user interest vectors over categories and creators: exponentially decayed engagement. The
per-view strength is declared here (SQL, in the JVM); the rules below run in the JVM operator
jobs/jvm DecayedInterests, configured from `interests.*`.

Semantics (also in the docs/features.md, "User interests"). A user's views are taken in event-time order
(the JVM operator takes them in event-time steps of `emit_interval`, closed by the watermark;
within a step they are sorted; a view whose step has already closed is applied alone). Each view v at event
time t_v adds its engagement strength s_v to the view's category and to its creator. Two gap
rules bound the state, and both are functions of the view times alone:

- session: a view more than TTL after the user's previous view starts the user afresh (every
  weight and count back to zero). TTL is `newcomer_ttl` while the user has fewer than
  `min_events` views in the session, `idle_ttl` from then on;
- item: a view of an item more than `forget_after` after the previous view of that item in the
  session restarts that item's weight from zero.

As of T, the user's newest view time, the interest in item c is

    I(c, T) = sum over the views v of c since its last restart of  s_v * exp(-(T - t_v) / tau)

Written are the top N items by weight with |I| >= `prune_below` (the filter does not change
state: an item below it comes back with its exact weight), with the session's view count and the
views whose video had no known metadata (`unenriched`: counted, in no vector). Strength (computed
in the JVM, `strength_sql`):

    s_v = w_completion * min(1, watch_time / duration) + w_liked * liked + w_shared * shared
          + w_commented * commented + w_rewatch * min(rewatches, 5) - w_fast_skip * fast_skip

where fast_skip = skipped and watch_time < fast_skip_ms.
"""
from __future__ import annotations

from dataclasses import dataclass

from schemas.durations import Duration

MAX_REWATCHES_COUNTED = 5


@dataclass(frozen=True)
class StrengthWeights:
    """Engagement strength of one view: the interest it adds to its category and creator (the
    config's `interests.weights`)."""
    completion: float = 1.0  # times min(1, watch_time / duration)
    liked: float = 2.0
    shared: float = 3.0
    commented: float = 2.0
    rewatch: float = 0.5  # per rewatch, at most MAX_REWATCHES_COUNTED counted
    fast_skip: float = 1.5  # subtracted for a skip within fast_skip_ms
    fast_skip_ms: Duration = 3000


def strength_sql(w: StrengthWeights) -> str:
    """Flink SQL expression of s_v over an enriched engagement row (computed in the JVM)."""
    return (f"CAST({w.completion!r} AS DOUBLE) * LEAST(CAST(1.0 AS DOUBLE), "
            f"CAST(watch_time_ms AS DOUBLE) / CAST(video_duration_ms AS DOUBLE))"
            f" + CASE WHEN liked THEN CAST({w.liked!r} AS DOUBLE) ELSE 0.0 END"
            f" + CASE WHEN shared THEN CAST({w.shared!r} AS DOUBLE) ELSE 0.0 END"
            f" + CASE WHEN commented THEN CAST({w.commented!r} AS DOUBLE) ELSE 0.0 END"
            f" + CAST({w.rewatch!r} AS DOUBLE) * CAST(LEAST(rewatches, {MAX_REWATCHES_COUNTED}) AS DOUBLE)"
            f" - CASE WHEN skipped AND watch_time_ms < {w.fast_skip_ms} THEN CAST({w.fast_skip!r} AS DOUBLE)"
            f" ELSE 0.0 END")
