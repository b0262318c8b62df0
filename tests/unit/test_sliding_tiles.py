"""SlidingTiles against a brute-force recomputation of the documented window semantics."""
from __future__ import annotations

import math
import random

import pytest

from operators.sliding_tiles import SlidingTiles, TileGeometry

TILE, STEP = 60_000, 1000
WINDOWS = (3_600_000, 6 * 3_600_000, 24 * 3_600_000)
GEO = TileGeometry(TILE, STEP, WINDOWS)


def brute(contribs, as_of):
    """contribs: list of (event_time, value). Sum per window at as_of, straight from the definition."""
    out = []
    for w in WINDOWS:
        start = math.ceil(as_of / TILE) * TILE - w
        out.append(sum(v for t, v in contribs if start <= t < as_of))
    return out


def test_window_start_is_tile_aligned_and_length_at_most_w():
    for as_of in (3_600_000 * 30, 3_600_000 * 30 + 1000, 3_600_000 * 30 + 59_000):
        for w in WINDOWS:
            start = GEO.first_tile(as_of, w) * TILE
            assert start % TILE == 0
            assert w - TILE < as_of - start <= w


def test_expiry_timer_is_the_first_step_that_excludes_the_tile():
    tile = 1000
    for w, t in zip(WINDOWS, GEO.expiry_times(tile)):
        as_of = GEO.as_of_at_watermark(t)
        assert GEO.first_tile(as_of, w) == tile + 1
        assert GEO.first_tile(as_of - STEP, w) == tile  # one step earlier it was still inside


@pytest.mark.parametrize("seed", range(20))
def test_running_sums_equal_brute_force(seed):
    rng = random.Random(seed)
    st = SlidingTiles(width=2, n_windows=len(WINDOWS))
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % TILE
    now = t0
    seen = []  # (event_time, views) that the state absorbed
    for _ in range(400):
        now += rng.choice([STEP, STEP, 5 * STEP, TILE, 7 * TILE, 3_600_000, 5 * 3_600_000])
        as_of = now - now % STEP
        if rng.random() < 0.2:  # a timer: windows move, nothing added
            st.advance(GEO, as_of)
        else:
            late = rng.random() < 0.2
            t = as_of - STEP - (rng.randrange(0, 120_000) if late else 0)
            n = rng.randint(1, 5)
            if t >= GEO.first_tile(max(as_of, st.as_of), max(WINDOWS)) * TILE:
                seen.append((t, n))
            st.add(GEO, (t - t % STEP) // TILE, [n, n * 0.5], max(as_of, st.as_of))
        want = brute(seen, st.as_of)
        assert [s[0] for s in st.sums] == want
        assert [s[1] for s in st.sums] == pytest.approx([x * 0.5 for x in want])
    # nothing older than the longest window is kept
    assert all(j >= GEO.first_tile(st.as_of, max(WINDOWS)) for j in st.tiles)


def test_absorbed_counts_views_and_ignores_contributions_older_than_every_window():
    st = SlidingTiles(width=1, n_windows=len(WINDOWS))
    as_of = 100 * 86_400_000
    assert st.add(GEO, as_of // TILE - 1, [3], as_of) is True
    assert st.add(GEO, as_of // TILE - 1, [2], as_of) is False  # same tile: no new timers
    assert st.add(GEO, (as_of - 2 * 86_400_000) // TILE, [7], as_of) is False
    assert st.absorbed == 5 and [s[0] for s in st.sums] == [5, 5, 5]


def test_state_empties_when_the_last_tile_leaves_the_longest_window():
    st = SlidingTiles(width=1, n_windows=len(WINDOWS))
    as_of = 100 * 86_400_000
    st.add(GEO, as_of // TILE - 1, [4], as_of)
    assert st.advance(GEO, as_of + 86_400_000) is True
    assert st.is_empty() and [s[0] for s in st.sums] == [0, 0, 0]
