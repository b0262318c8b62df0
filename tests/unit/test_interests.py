import math
import random

from operators.interests import StrengthWeights, UserInterests, parse_views, strength, top_n

TAU = 1_800_000
W = StrengthWeights(completion=1.0, liked=2.0, shared=3.0, commented=2.0, rewatch=0.5, fast_skip=1.5,
                    fast_skip_ms=3000)


def _direct(views, T):
    cats = {}
    for t, c, _, s in views:
        if c:
            cats[c] = cats.get(c, 0.0) + s * math.exp(-(T - t) / TAU)
    return cats


def test_decayed_sums_are_exact_in_any_arrival_order_and_batching():
    rng = random.Random(3)
    views = [(1_000_000 + rng.randrange(3_600_000), rng.choice("abc"), "k" + rng.choice("xy"), rng.uniform(-1.5, 6))
             for _ in range(200)]
    want = _direct(views, max(v[0] for v in views))
    for _ in range(5):
        shuffled = views[:]
        rng.shuffle(shuffled)
        st = UserInterests()
        i = 0
        while i < len(shuffled):
            k = rng.randint(1, 7)
            st.add(shuffled[i:i + k], TAU, 0.0)
            i += k
        assert st.as_of == max(v[0] for v in views) and st.events == 200
        assert set(st.categories) == set(want)
        for c in want:
            assert math.isclose(st.categories[c], want[c], rel_tol=1e-9)


def test_unknown_metadata_counts_but_adds_no_interest():
    st = UserInterests()
    st.add([(10, "", "", 5.0), (20, "music", "c1", 1.0)], TAU, 0.0)
    assert st.events == 2 and st.unenriched == 1 and list(st.categories) == ["music"]


def test_pruning_drops_entries_that_decayed_below_the_threshold():
    st = UserInterests()
    st.add([(0, "old", "c1", 1.0)], TAU, 0.05)
    st.add([(4 * TAU, "new", "c2", 1.0)], TAU, 0.05)  # old: exp(-4) = 0.018 < 0.05
    assert set(st.categories) == {"new"} and set(st.creators) == {"c2"}


def test_newcomers_expire_sooner_than_regulars():
    st = UserInterests()
    st.add([(1000, "a", "c", 1.0)], TAU, 0.0)
    assert st.expires_at(3, 60_000, 7_200_000) == 61_000
    st.add([(2000, "a", "c", 1.0), (3000, "a", "c", 1.0)], TAU, 0.0)
    assert st.expires_at(3, 60_000, 7_200_000) == 7_203_000


def test_top_n_orders_by_weight_then_name():
    assert top_n({"b": 1.0, "a": 1.0, "c": 3.0, "d": -1.0}, 3) == [["c", 3.0], ["a", 1.0], ["b", 1.0]]


def test_strength_rewards_completion_and_actions_and_punishes_fast_skips():
    base = {"watch_time_ms": 30_000, "video_duration_ms": 30_000, "liked": True, "shared": False,
            "commented": True, "skipped": False, "rewatches": 9}
    assert strength(W, base) == 1.0 + 2.0 + 2.0 + 0.5 * 5
    skip = dict(base, watch_time_ms=1000, liked=False, commented=False, skipped=True, rewatches=0)
    assert math.isclose(strength(W, skip), 1000 / 30_000 - 1.5)
    slow_skip = dict(skip, watch_time_ms=5000)
    assert strength(W, slow_skip) > 0


def test_packed_views_round_trip():
    assert list(parse_views("10|music|c1|1.5;20|||-0.5")) == [(10, "music", "c1", 1.5), (20, "", "", -0.5)]
