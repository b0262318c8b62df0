"""The window geometry (which tiles a window holds, when a tile leaves it) against the documented
semantics. The sums themselves are checked end to end against the pandas oracle."""
from __future__ import annotations

import math

from operators.sliding_tiles import TileGeometry

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
