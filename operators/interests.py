"""Per-user interest vectors over categories and creators: exponentially decayed engagement.

Semantics (also in the README). Each view v of user u at event time t_v adds its engagement
strength s_v to the view's category and to its creator. The interest of u in item c, as of time T,
is

    I_u(c, T) = sum over views v of u with item c and t_v <= T of  s_v * exp(-(T - t_v) / tau)

with tau the decay time constant (30 min by default: a view's weight halves every 20.8 min). T is
the newest event time seen for the user, so the vector is a pure function of the user's events
whatever their arrival order or batching (a sum of exponentials is exact in any order). A reader
who wants the value at a later time multiplies every weight by exp(-(now - T) / tau); the ranking
does not change. Strength:

    s_v = w_completion * min(1, watch_time / duration) + w_liked * liked + w_shared * shared
          + w_commented * commented + w_rewatch * min(rewatches, 5) - w_fast_skip * fast_skip

where fast_skip = skipped and watch_time < fast_skip_ms. An entry whose |weight| falls below
`prune_below` at an update is dropped (0 keeps everything). Views of a video whose metadata is
unknown count toward `unenriched` and toward no item.

State is bounded: a user with fewer than `min_events` views lives only `newcomer_ttl` of event time
after their last view, others `idle_ttl`; one timer per user re-arms itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_REWATCHES_COUNTED = 5
UNKNOWN = "unknown"
RECORD_SEP, FIELD_SEP = ";", "|"


@dataclass(frozen=True)
class StrengthWeights:
    completion: float
    liked: float
    shared: float
    commented: float
    rewatch: float
    fast_skip: float
    fast_skip_ms: int


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


def strength(w: StrengthWeights, e: dict) -> float:
    """The same strength in Python (for tools and tests of this module)."""
    s = w.completion * min(1.0, e["watch_time_ms"] / e["video_duration_ms"])
    s += w.liked * e["liked"] + w.shared * e["shared"] + w.commented * e["commented"]
    s += w.rewatch * min(e.get("rewatches", 0), MAX_REWATCHES_COUNTED)
    if e["skipped"] and e["watch_time_ms"] < w.fast_skip_ms:
        s -= w.fast_skip
    return s


def parse_views(packed: str):
    """The JVM packs a user's views of one batch as 'time|category|creator|strength;...'
    (unknown metadata as empty category and creator). Yields (t, category, creator, s)."""
    for rec in packed.split(RECORD_SEP):
        t, cat, creator, s = rec.split(FIELD_SEP)
        yield int(t), cat, creator, float(s)


@dataclass
class UserInterests:
    as_of: int = -1  # newest event time seen; weights are as of this time
    events: int = 0
    unenriched: int = 0
    categories: dict = field(default_factory=dict)
    creators: dict = field(default_factory=dict)
    timer_at: int | None = None  # the one pending eviction timer

    def add(self, views, tau_ms: int, prune_below: float) -> None:
        """Adds views (t, category, creator, s); empty category/creator = unknown metadata."""
        views = list(views)
        newest = max(t for t, *_ in views)
        if newest > self.as_of:
            if self.as_of >= 0:
                f = math.exp(-(newest - self.as_of) / tau_ms)
                for d in (self.categories, self.creators):
                    for k in d:
                        d[k] *= f
            self.as_of = newest
        for t, cat, creator, s in views:
            self.events += 1
            if not cat:
                self.unenriched += 1
                continue
            w = s * math.exp(-(self.as_of - t) / tau_ms)
            self.categories[cat] = self.categories.get(cat, 0.0) + w
            self.creators[creator] = self.creators.get(creator, 0.0) + w
        if prune_below > 0:
            for d in (self.categories, self.creators):
                for k in [k for k, v in d.items() if abs(v) < prune_below]:
                    del d[k]

    def expires_at(self, min_events: int, newcomer_ttl: int, idle_ttl: int) -> int:
        return self.as_of + (idle_ttl if self.events >= min_events else newcomer_ttl)


def top_n(weights: dict, n: int) -> list:
    """[[item, weight], ...] by weight descending, ties by item ascending."""
    return [[k, v] for k, v in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
