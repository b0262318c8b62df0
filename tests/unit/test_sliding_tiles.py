"""The window geometry (which tiles a window holds, when a tile leaves it) against the documented
semantics, and the job's JVM window arithmetic (jobs/jvm TileWindows) against a brute-force
recomputation of it."""
from __future__ import annotations

import math
import random

import pytest

from operators.sliding_tiles import TileGeometry

NONE = -(2**63)  # TileWindows.NONE

TILE, STEP = 60_000, 1000
WINDOWS = (3_600_000, 6 * 3_600_000, 24 * 3_600_000)
GEO = TileGeometry(TILE, STEP, WINDOWS)


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


class JvmTiles:
    """One entity's state in the job's JVM operator (jobs/jvm TileWindows), driven directly; its
    tiles in a TreeMap, or `packed` in one long array as the operator stores them (PackedTiles)."""

    def __init__(self, width: int, packed: bool = False):
        from tests.unit.jvm_ops import ops

        self.win = ops().TileWindows(TILE, STEP, long_array(WINDOWS), width)
        self.meta, self.sums = self.win.newMeta(), self.win.newSums()
        self.tiles = (ops().PackedTiles.fresh(self.win.layout(), self.meta, self.sums) if packed
                      else ops().TileWindows.MemoryTiles())
        self.width = width

    def add(self, tile: int, vec, as_of: int) -> int:
        return self.win.add(self.meta, self.sums, self.tiles, tile, long_array(vec), as_of)

    def advance(self, as_of: int) -> bool:
        return self.win.advance(self.meta, self.sums, self.tiles, as_of)

    @property
    def as_of(self) -> int:
        return self.meta[0]

    @property
    def absorbed(self) -> int:
        return self.meta[1]

    def window_sums(self, value: int) -> list[int]:
        return [self.sums[w * self.width + value] for w in range(len(WINDOWS))]

    def tile_indexes(self) -> list[int]:
        return list(self.tiles.indexes(NONE, 2**63 - 1))


def long_array(values):
    from jobs.keyed import long_array as to_java

    return to_java(values)


def brute(contribs, as_of):
    """contribs: list of (event_time, value). Sum per window at as_of, straight from the definition."""
    out = []
    for w in WINDOWS:
        start = math.ceil(as_of / TILE) * TILE - w
        out.append(sum(v for t, v in contribs if start <= t < as_of))
    return out


@pytest.mark.parametrize("packed", [False, True], ids=["tree-map", "packed"])
@pytest.mark.parametrize("seed", range(10))
def test_running_sums_equal_brute_force(seed, packed):
    rng = random.Random(seed)
    st = JvmTiles(width=2, packed=packed)
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % TILE
    now = t0
    seen = []  # (event_time, views) that the state absorbed
    for _ in range(300):
        now += rng.choice([STEP, STEP, 5 * STEP, TILE, 7 * TILE, 3_600_000, 5 * 3_600_000])
        as_of = now - now % STEP
        if rng.random() < 0.2:  # a timer: windows move, nothing added
            st.advance(as_of)
        else:
            late = rng.random() < 0.2
            t = as_of - STEP - (rng.randrange(0, 120_000) if late else 0)
            n = rng.randint(1, 5)
            if t >= GEO.first_tile(max(as_of, st.as_of), max(WINDOWS)) * TILE:
                seen.append((t, n))
            st.add((t - t % STEP) // TILE, [n, 3 * n], max(as_of, st.as_of))
        want = brute(seen, st.as_of)
        assert st.window_sums(0) == want
        assert st.window_sums(1) == [3 * x for x in want]
    # nothing older than the longest window is kept
    assert all(j >= GEO.first_tile(st.as_of, max(WINDOWS)) for j in st.tile_indexes())


def test_absorbed_counts_views_and_ignores_contributions_older_than_every_window():
    st = JvmTiles(width=1)
    as_of = 100 * 86_400_000
    assert st.add(as_of // TILE - 1, [3], as_of) == 1  # a new tile: its expiry timers get registered
    assert st.add(as_of // TILE - 1, [2], as_of) == 0  # same tile: no new timers
    assert st.add((as_of - 2 * 86_400_000) // TILE, [7], as_of) == -1
    assert st.absorbed == 5 and st.window_sums(0) == [5, 5, 5]


def test_state_empties_when_the_last_tile_leaves_the_longest_window():
    st = JvmTiles(width=1)
    as_of = 100 * 86_400_000
    st.add(as_of // TILE - 1, [4], as_of)
    assert st.advance(as_of + 86_400_000) is True
    assert st.tile_indexes() == [] and st.window_sums(0) == [0, 0, 0]


def test_the_jvm_geometry_is_the_documented_one():
    st = JvmTiles(width=1)
    for tile in (0, 1000, 28_333_333):
        assert list(st.win.expiryTimes(tile)) == GEO.expiry_times(tile)
    for t in (0, 999, 1000, 1_700_000_123_456):
        assert st.win.stepEnd(t) == GEO.step_end(t) and st.win.asOfAtWatermark(t) == GEO.as_of_at_watermark(t)


@pytest.mark.parametrize("packed", [False, True], ids=["tree-map", "packed"])
def test_state_of_another_declaration_moves_over_with_new_windows_summed_from_the_tiles(packed):
    """A savepoint of a build with windows 1h and 24h restored where 1h, 6h and 24h are declared,
    and a value appended: the 6h window is summed from the stored tiles, the new value starts at 0.
    `packed`: the old state as the operator stores it (PackedTiles, as a build before it kept it in
    five states is moved into it), moved over as the operator does on load."""
    from tests.unit.jvm_ops import ops

    old = ops().TileWindows(TILE, STEP, long_array([3_600_000, 86_400_000]), 1)
    meta, sums, tiles = old.newMeta(), old.newSums(), ops().TileWindows.MemoryTiles()
    rng = random.Random(5)
    as_of, seen = 200 * 86_400_000, []
    for _ in range(200):
        as_of += rng.choice([STEP, TILE, 17 * TILE])
        n = rng.randint(1, 4)
        seen.append((as_of - STEP, n))
        old.add(meta, sums, tiles, (as_of - STEP) // TILE, long_array([n]), as_of)
    new = JvmTiles(width=2)
    if packed:
        kept = ops().PackedTiles.withTiles(old.layout(), meta, sums, NONE, tiles)
        moved = ops().PackedTiles.of(kept.packed()).inLayoutOf(new.win, new.win.layout())
        assert moved.hasLayout(new.win.layout()) and len(moved.get(moved.first(NONE))) == 2
        new.meta, new.sums, new.tiles = moved.meta(), moved.sums(), moved
    else:
        moved = new.win.relayout(old.layout(), meta, sums, tiles)
        new.meta, new.sums, new.tiles = moved[0], moved[1], tiles
    assert new.window_sums(0) == brute(seen, as_of) and new.window_sums(1) == [0, 0, 0]
    # the moved state's one timer: the first instant a stored tile leaves any of the new windows
    counted = [(j, w) for j in new.tile_indexes() for w, length in enumerate(WINDOWS)
               if j >= GEO.first_tile(as_of, length)]
    assert new.win.nextExpiry(new.meta, new.tiles) == min(GEO.expiry_times(j)[w] for j, w in counted)


@pytest.mark.parametrize("seed", range(2))
def test_packed_tiles_hold_what_a_map_holds_and_survive_their_array(seed):
    """The operator's one-array state (PackedTiles) against a TreeMap under random puts, updates in
    place and removals; read back from its array alone (as after a checkpoint), nothing changes."""
    from tests.unit.jvm_ops import ops

    rng = random.Random(seed)
    win = ops().TileWindows(TILE, STEP, long_array(WINDOWS), 3)
    meta, sums = win.newMeta(), win.newSums()
    packed, model = ops().PackedTiles.fresh(win.layout(), meta, sums), {}
    for step in range(250):
        tile = rng.randrange(0, 40)
        if rng.random() < 0.35:
            packed.remove(tile)
            model.pop(tile, None)
        else:
            vec = [rng.randrange(0, 1000) for _ in range(3)]
            packed.put(tile, long_array(vec))
            model[tile] = vec
        if rng.random() < 0.1:
            packed.arm(step)
        if rng.random() < 0.2:
            packed = ops().PackedTiles.of(packed.packed())
        lo, hi = sorted(rng.randrange(-5, 45) for _ in range(2))
        assert list(packed.indexes(lo, hi)) == sorted(j for j in model if lo <= j < hi)
        assert packed.first(lo) == min((j for j in model if j >= lo), default=NONE)
        assert all(list(packed.get(j)) == v for j, v in model.items())
        assert packed.get(41) is None and packed.isEmpty() == (not model)
    restored = ops().PackedTiles.of(packed.packed())
    assert restored.armed() == packed.armed() and restored.hasLayout(win.layout())
    assert list(restored.meta()) == list(meta) and list(restored.sums()) == list(sums)
    assert not restored.hasLayout(ops().TileWindows(TILE, STEP, long_array(WINDOWS[:2]), 3).layout())


def _run_with_timers(seed: int, one_timer: bool) -> list:
    """Random steps and watermarks through one entity's state, with the job's timers: either one
    per new tile and window (as the operator had), or one at nextExpiry re-armed at each firing (as
    it has). Returns the updates: (as_of, sums) at every add and every timer that changed a sum."""
    rng = random.Random(seed)
    st = JvmTiles(width=1)
    now = 1_700_000_000_000 - 1_700_000_000_000 % TILE
    timers, armed, updates = set(), None, []

    def arm():
        nonlocal armed
        nxt = st.win.nextExpiry(st.meta, st.tiles)
        if nxt != NONE and (armed is None or nxt < armed):
            timers.add(nxt)
            armed = nxt

    for _ in range(400):
        now += rng.choice([STEP, 5 * STEP, TILE, 7 * TILE, 3_600_000, 5 * 3_600_000])
        if rng.random() < 0.7:  # a step closes (or, one time in five, a correction behind it)
            t = now - STEP - (rng.randrange(0, 120_000) if rng.random() < 0.2 else 0)
            tile = (t - t % STEP) // TILE
            if st.add(tile, [rng.randint(1, 5)], max(st.win.stepEnd(t), st.as_of)) == 1 and not one_timer:
                timers.update(st.win.expiryTimes(tile))
            updates.append((st.as_of, list(st.sums)))
            if one_timer:
                arm()
        watermark = now - rng.choice([0, STEP, TILE, 3_600_000])
        while timers and min(timers) <= watermark:  # Flink fires due timers in order, new ones too
            at = min(timers)
            timers.discard(at)
            if at == armed:
                armed = None
            if st.advance(st.win.asOfAtWatermark(at)):
                updates.append((st.as_of, list(st.sums)))
            if one_timer:
                arm()
    return updates


@pytest.mark.parametrize("seed", range(6))
def test_one_timer_at_the_next_expiry_gives_the_updates_of_a_timer_per_tile_and_window(seed):
    per_tile = _run_with_timers(seed, one_timer=False)
    assert len(per_tile) > 200
    assert _run_with_timers(seed, one_timer=True) == per_tile
