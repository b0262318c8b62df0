"""Per-user interest vectors over categories and creators: exponentially decayed engagement.

Semantics (also in the README, "User interests"). A user's views are taken in event-time order
(the job hands them over in event-time steps; within a step they are sorted). Each view v at event
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

import math
from dataclasses import dataclass, field

MAX_REWATCHES_COUNTED = 5
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


@dataclass(frozen=True)
class InterestRules:
    decay_ms: int  # tau
    top_n: int
    prune_below: float  # items with |weight| below this are not written
    min_events: int
    newcomer_ttl_ms: int
    idle_ttl_ms: int
    forget_after_ms: int

    def session_ttl(self, events: int) -> int:
        return self.idle_ttl_ms if events >= self.min_events else self.newcomer_ttl_ms


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


def parse_views(packed: str) -> list:
    """The JVM packs a user's views of one step as 'time|category|creator|strength;...' (unknown
    metadata as empty category and creator). Returns [(t, category, creator, s)] in a fixed order
    (time, then the rest), so that the same views give the same floating-point sums however the
    step's views arrived."""
    views = []
    for rec in packed.split(RECORD_SEP):
        t, cat, creator, s = rec.split(FIELD_SEP)
        views.append((int(t), cat, creator, float(s)))
    views.sort()
    return views


@dataclass
class UserInterests:
    """One user's session. Items map to [weight as of `as_of`, time of the item's newest view]."""
    as_of: int = -1  # newest view time of the session; weights are as of this time
    events: int = 0
    unenriched: int = 0
    categories: dict = field(default_factory=dict)
    creators: dict = field(default_factory=dict)
    sessions: int = 0  # sessions started by this state (the first one included)
    timer_at: int | None = None  # the one pending clean-up timer

    def add(self, views, rules: InterestRules) -> None:
        """Applies views (t, category, creator, s) in the given order; empty category and creator
        mean unknown metadata. A view older than `as_of` (it arrived behind the watermark) is added
        at its own decayed weight."""
        for t, cat, creator, s in views:
            if self.as_of < 0 or t - self.as_of > rules.session_ttl(self.events):
                self._start_session()
            if t > self.as_of:
                if self.as_of >= 0:
                    f = math.exp(-(t - self.as_of) / rules.decay_ms)
                    for d in (self.categories, self.creators):
                        for entry in d.values():
                            entry[0] *= f
                self.as_of = t
            self.events += 1
            if not cat:
                self.unenriched += 1
                continue
            w = s * math.exp(-(self.as_of - t) / rules.decay_ms)
            _add_to_item(self.categories, cat, t, w, rules.forget_after_ms)
            _add_to_item(self.creators, creator, t, w, rules.forget_after_ms)
        self._forget(rules.forget_after_ms)

    def _start_session(self) -> None:
        self.as_of, self.events, self.unenriched = -1, 0, 0
        self.categories, self.creators = {}, {}
        self.sessions += 1

    def _forget(self, forget_after: int) -> None:
        """Drops items whose newest view is more than `forget_after` behind `as_of`: any later view
        of them restarts them anyway (the item rule), so only memory changes."""
        for d in (self.categories, self.creators):
            for k in [k for k, (_, last) in d.items() if self.as_of - last > forget_after]:
                del d[k]

    def cleanup_at(self, rules: InterestRules, allowed_lateness: int) -> int:
        """Event time after which the session is over (its next view would start a new one) and a
        view behind the watermark can no longer belong to it: the state can go."""
        return self.as_of + rules.session_ttl(self.events) + allowed_lateness

    def ranked(self, weights: dict, rules: InterestRules) -> list:
        """[[item, weight], ...]: the top N with |weight| >= prune_below, by weight descending,
        ties by item ascending."""
        kept = [(k, w) for k, (w, _) in weights.items() if abs(w) >= rules.prune_below]
        kept.sort(key=lambda kv: (-kv[1], kv[0]))
        return [[k, w] for k, w in kept[:rules.top_n]]

    def values(self, rules: InterestRules) -> list:
        """The user_interests group's values, in its order."""
        return [self.ranked(self.categories, rules), self.ranked(self.creators, rules), self.events,
                self.unenriched]


def _add_to_item(items: dict, key: str, t: int, w: float, forget_after: int) -> None:
    entry = items.get(key)
    if entry is None or t - entry[1] > forget_after:
        items[key] = [w, t]
    else:
        entry[0] += w
        if t > entry[1]:
            entry[1] = t
