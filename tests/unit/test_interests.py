"""The interest rules (operators/interests.py, docs/features.md "User interests") as the job's JVM operator
(jobs/jvm DecayedInterests) runs them, driven row by row without a Flink job."""
import math
import random
from dataclasses import dataclass

import orjson
from py4j.java_gateway import get_field

from tests.unit.jvm_ops import ops

TAU = 1_800_000


@dataclass(frozen=True)
class Rules:
    decay_ms: int
    top_n: int
    prune_below: float
    min_events: int
    newcomer_ttl_ms: int
    idle_ttl_ms: int
    forget_after_ms: int


RULES = Rules(decay_ms=TAU, top_n=10, prune_below=0.0, min_events=3, newcomer_ttl_ms=120_000,
              idle_ttl_ms=7_200_000, forget_after_ms=21_600_000)


class UserInterests:
    """One user's state in the JVM operator; `add` hands it one row (a step's views)."""

    def __init__(self, rules=RULES):
        self.fn = ops().DecayedInterests("user_interests", 1000, rules.decay_ms, rules.top_n, float(rules.prune_below),
                                         rules.min_events, rules.newcomer_ttl_ms, rules.idle_ttl_ms,
                                         rules.forget_after_ms, 0)
        self.session = ops().DecayedInterests.Session()

    def add(self, views, rules=None):
        self.fn.apply(self.session, ";".join(f"{t}|{c}|{k}|{s!r}" for t, c, k, s in views))

    def update(self) -> dict:
        return orjson.loads(self.fn.message("u", self.session))

    @property
    def as_of(self):
        return get_field(self.session, 'asOf')

    @property
    def events(self):
        return get_field(self.session, 'events')

    @property
    def sessions(self):
        return get_field(self.session, 'sessions')

    @property
    def unenriched(self):
        return get_field(self.session, 'unenriched')

    @property
    def categories(self) -> set:
        items = get_field(self.session, "categories")
        keys = get_field(items, "keys")
        return {keys[i] for i in range(get_field(items, "size"))}

    def values(self, rules=None):
        return self.update()["v"]


def _direct(views, T):
    cats = {}
    for t, c, _, s in views:
        if c:
            cats[c] = cats.get(c, 0.0) + s * math.exp(-(T - t) / TAU)
    return cats


def _weights(st, rules=RULES):
    return dict(map(tuple, st.values()[0]))


def test_decayed_sums_are_exact_however_ordered_views_are_grouped():
    rng = random.Random(3)
    views = sorted((1_000_000 + 20_000 * k + rng.randrange(20_000), rng.choice("abc"), "k" + rng.choice("xy"),
                    rng.uniform(-1.5, 6)) for k in range(200))
    want = _direct(views, views[-1][0])
    for _ in range(5):
        st, i = UserInterests(), 0
        while i < len(views):
            k = rng.randint(1, 7)
            st.add(views[i:i + k], RULES)
            i += k
        assert st.as_of == views[-1][0] and st.events == 200 and st.sessions == 1
        got = _weights(st)
        assert set(got) == set(want)
        assert all(math.isclose(got[c], want[c], rel_tol=1e-9) for c in want)


def test_a_view_behind_the_newest_is_added_at_its_own_decayed_weight():
    st = UserInterests()
    st.add([(10_000, "a", "c", 1.0), (70_000, "b", "c", 1.0)], RULES)
    st.add([(5_000, "a", "c", 2.0)], RULES)  # arrived behind the watermark
    assert st.as_of == 70_000 and st.events == 3 and st.sessions == 1
    assert math.isclose(_weights(st)["a"], math.exp(-60_000 / TAU) + 2 * math.exp(-65_000 / TAU), rel_tol=1e-12)


def test_unknown_metadata_counts_but_adds_no_interest():
    st = UserInterests()
    st.add([(10, "", "", 5.0), (20, "music", "c1", 1.0)], RULES)
    assert st.events == 2 and st.unenriched == 1 and st.categories == {"music"}


def test_a_newcomer_back_after_the_newcomer_ttl_starts_a_new_session():
    st = UserInterests()
    st.add([(0, "a", "c", 1.0), (1000, "a", "c", 1.0)], RULES)  # 2 views: still a newcomer
    st.add([(1000 + 120_001, "b", "c", 1.0)], RULES)
    assert (st.events, st.sessions, set(st.categories)) == (1, 2, {"b"})


def test_a_regular_keeps_the_session_until_the_idle_ttl():
    st = UserInterests()
    st.add([(0, "a", "c", 1.0), (1000, "a", "c", 1.0), (2000, "a", "c", 1.0)], RULES)  # 3 views: regular
    st.add([(2000 + 120_001, "b", "c", 1.0)], RULES)
    assert (st.events, st.sessions) == (4, 1)
    st.add([(2000 + 120_001 + 7_200_001, "b", "c", 1.0)], RULES)
    assert (st.events, st.sessions, set(st.categories)) == (1, 2, {"b"})


def test_the_session_ttl_counts_the_views_before_the_gap():
    """A third view after a gap longer than the newcomer TTL opens a new session, however many
    views come after it in the same step."""
    st = UserInterests()
    st.add([(0, "a", "c", 1.0), (1000, "a", "c", 1.0), (200_000, "b", "c", 1.0), (201_000, "b", "c", 1.0)], RULES)
    assert (st.events, st.sessions, set(st.categories)) == (2, 2, {"b"})


def test_an_item_viewed_again_after_forget_after_restarts_from_zero():
    rules = Rules(TAU, 10, 0.0, 1, 120_000, 10 * 3_600_000, 3 * 3_600_000)
    st = UserInterests(rules)
    st.add([(0, "a", "ca", 1.0)], rules)
    st.add([(3 * 3_600_000 - 1, "b", "cb", 1.0)], rules)  # keeps the session alive
    st.add([(3 * 3_600_000, "a", "ca", 1.0)], rules)  # 3 h after its previous view: not forgotten
    assert math.isclose(_weights(st, rules)["a"], 1.0 + math.exp(-6), rel_tol=1e-12)
    st.add([(6 * 3_600_000, "b", "cb", 1.0), (6 * 3_600_000 + 1, "a", "ca", 1.0)], rules)
    # b: 3 h + 1 ms after its previous view, restarted; a: 3 h + 1 ms too
    assert math.isclose(_weights(st, rules)["b"], math.exp(-1 / TAU), rel_tol=1e-15) and _weights(st, rules)["a"] == 1.0
    st.add([(9 * 3_600_000 + 10, "c", "cc", 1.0)], rules)
    assert set(st.categories) == {"c"}  # the others' newest views are over 3 h behind: dropped


def test_prune_below_filters_what_is_written_and_keeps_the_exact_weight():
    rules = Rules(TAU, 10, 0.05, 1, 120_000, 7_200_000, 21_600_000)
    st = UserInterests(rules)
    st.add([(0, "old", "c1", 1.0)], rules)
    st.add([(4 * TAU // 2, "x", "c2", 1.0), (4 * TAU, "new", "c2", 1.0)], rules)  # old: exp(-4) < 0.05
    assert [c for c, _ in st.values(rules)[0]] == ["new", "x"]
    st.add([(4 * TAU + 1, "old", "c1", 0.04)], rules)
    assert math.isclose(dict(map(tuple, st.values(rules)[0]))["old"], math.exp(-4 - 1 / TAU) + 0.04, rel_tol=1e-12)


def test_ranked_orders_by_weight_then_name_and_keeps_top_n():
    st = UserInterests(Rules(TAU, 3, 0.0, 1, 10**9, 10**9, 10**9))
    st.add([(0, "b", "k", 1.0), (0, "a", "k", 1.0), (0, "c", "k", 3.0), (0, "d", "k", -1.0)])
    assert st.values()[0] == [["c", 3.0], ["a", 1.0], ["b", 1.0]]


def test_a_step_applies_in_time_order_whatever_the_packing():
    st = UserInterests()
    st.add([(20, "", "", -0.5), (10, "music", "c1", 1.5)])
    assert (st.as_of, st.events, st.unenriched) == (20, 2, 1)
    assert math.isclose(_weights(st)["music"], 1.5 * math.exp(-10 / TAU), rel_tol=1e-15)
