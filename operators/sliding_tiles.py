"""Sliding-window sums over time tiles, for one entity, exact at tile edges.

Window semantics (also in the README): time moves in steps of the emit interval E (1 s by
default): the as-of time T is the end of the last closed step, a multiple of E. For a window of
length W made of N = W / C tiles of length C (1 min by default), the window at T holds the events
with event time in

    [ ceil(T / C) * C - W ,  T )

that is the tile holding the last closed step plus the N - 1 tiles before it, cut at T. Its length
is W when T is on a tile edge and between W - C + E and W otherwise.

A tile leaves window W at the first step after (j + N) * C, so an entity's sums change when its
own steps close (tile input) or when one of its tiles falls out (an expiry, at
`expiry_times`). `SlidingTiles` holds the tiles of the longest window and running sums per window:
O(1) per input, O(tiles leaving) per expiry.
"""
from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass
class SlidingTiles:
    """Per-entity state: tiles of the longest window and a running sum vector per window."""

    width: int
    n_windows: int
    as_of: int = 0
    absorbed: int = 0  # views ever added: with as_of, the version of what this state says
    tiles: dict = field(default_factory=dict)  # tile index -> list[float] of length width
    sums: list = field(default_factory=list)  # per window -> list[float]
    first: list = field(default_factory=list)  # per window -> oldest tile index counted in sums

    def __post_init__(self) -> None:
        if not self.sums:
            self.sums = [[0] * self.width for _ in range(self.n_windows)]
            self.first = [None] * self.n_windows

    def advance(self, geo: TileGeometry, as_of: int) -> bool:
        """Moves the windows to `as_of`, subtracting tiles that fell out. Returns whether any sum
        changed."""
        if as_of > self.as_of:
            self.as_of = as_of
        changed = False
        for w, window_ms in enumerate(geo.windows_ms):
            new_first = geo.first_tile(self.as_of, window_ms)
            old_first = self.first[w]
            if old_first is None or new_first <= old_first:
                self.first[w] = new_first if old_first is None else old_first
                continue
            self.first[w] = new_first
            leaving = (range(old_first, new_first) if new_first - old_first <= len(self.tiles)
                       else sorted(j for j in self.tiles if old_first <= j < new_first))
            s = self.sums[w]
            for j in leaving:
                vec = self.tiles.get(j)
                if vec is not None:
                    for i, v in enumerate(vec):
                        s[i] -= v
                    changed = True
        longest_first = self.first[max(range(self.n_windows), key=lambda k: geo.windows_ms[k])]
        for j in [j for j in self.tiles if j < longest_first]:
            del self.tiles[j]
        return changed

    def add(self, geo: TileGeometry, tile: int, vec, as_of: int) -> bool:
        """Adds a contribution (vec[0] = its view count) to `tile` after moving to `as_of`.
        Returns True when `tile` is new (its expiry timers need registering). A contribution older
        than every window is ignored."""
        self.advance(geo, as_of)
        counted = False
        for w in range(self.n_windows):
            if tile >= self.first[w]:
                s = self.sums[w]
                for i, v in enumerate(vec):
                    s[i] += v
                counted = True
        if not counted:
            return False
        self.absorbed += int(vec[0])
        existing = self.tiles.get(tile)
        if existing is None:
            self.tiles[tile] = list(vec)
            return True
        for i, v in enumerate(vec):
            existing[i] += v
        return False

    def is_empty(self) -> bool:
        return not self.tiles
