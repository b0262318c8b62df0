"""Sliding-window sums over time tiles, for one entity, exact at tile edges.

Window semantics (also in docs/features.md): time moves in steps of the emit interval E (1 s by
default): the as-of time T is the end of the last closed step, a multiple of E. For a window of
length W made of N = W / C tiles of length C (1 min by default), the window at T holds the events
with event time in

    [ ceil(T / C) * C - W ,  T )

that is the tile holding the last closed step plus the N - 1 tiles before it, cut at T. Its length
is W when T is on a tile edge and between W - C + E and W otherwise.

A tile leaves window W at the first step after (j + N) * C, so an entity's sums change when its
own steps close (tile input) or when one of its tiles falls out (an expiry, at
`expiry_times`). The job's JVM operator (jobs/jvm SlidingTileSums) holds the tiles of the longest
window and running sums per window: O(1) per input, O(tiles leaving) per expiry.
"""
from __future__ import annotations

from dataclasses import dataclass


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class TileGeometry:
    tile_ms: int
    emit_ms: int
    windows_ms: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.tile_ms % self.emit_ms or any(w % self.tile_ms for w in self.windows_ms):
            raise ValueError("emit interval must divide the tile, and the tile every window")

    def first_tile(self, as_of: int, window_ms: int) -> int:
        """Index of the oldest tile in the window at `as_of`."""
        return ceil_div(as_of, self.tile_ms) - window_ms // self.tile_ms

    def step_end(self, t_ms: int) -> int:
        """End of the emit step holding event time t."""
        return (t_ms // self.emit_ms + 1) * self.emit_ms

    def as_of_at_watermark(self, watermark: int) -> int:
        """End of the last step the watermark has closed (a step [s, e) closes at e - 1)."""
        return (watermark + 1) // self.emit_ms * self.emit_ms

    def expiry_times(self, tile: int) -> list[int]:
        """Watermark instants (timer timestamps) at which `tile` leaves each window."""
        return [(tile + w // self.tile_ms) * self.tile_ms + self.emit_ms - 1 for w in self.windows_ms]
