"""Super-spike state of every video, one interval at a time, over arrays (numpy).

The job hands over one interval (1 min by default) at once: the views, regions, shares and skips of
each video with views, its upload time, and the platform's total views and active videos. Every
video the book tracks is stepped together (a video without views in the interval has zero), so the
cost is a few array operations per interval, not a Python call per video.

A spike is judged against the video's own past and the platform, with no absolute rate, so one
config serves a platform of 1K and of 100K events/s:
- baseline: the video's share of the platform's views, exponentially weighted (half-life
  `baseline_half_life` intervals; a running mean over the first ones of an unknown past), learnt
  while normal. Expected views = share x the platform's views: the daily and weekly swing cancels
  out.
- floor: expected views are never below `floor_share_of_mean` x the platform's mean views per
  active video, so a jump from 0 to 3 views of an obscure video is not news at any size.
- score: the Anscombe z of the views over the last `short_intervals` intervals against the
  expected ones, 2 (sqrt(x + 3/8) - sqrt(e + 3/8)), about N(0, 1) for Poisson counts, divided by
  sqrt(1 + d e / short_intervals) for the platform's noise beyond Poisson (variance e + d e^2 per
  interval; d estimated each interval over the normal videos, weighted like the baselines).

States (hysteresis; growth = views / expected):
  normal -> rising        the past is known, growth over the short window >= rise_growth and
                          z >= rise_z. The baseline is frozen at its value before the rise.
  rising -> super_spike   the interval's growth against the frozen baseline >= super_growth and
                          the z of all views since the rise against it >= super_z
  rising -> normal        no super-spike within `rise_window` intervals and its views over the
                          short window less than `climb_growth` times those of rise_window
                          intervals before: a slow climb; its level becomes the video's baseline
                          (one that keeps doubling, as a viral video does, goes on rising)
  rising | super_spike -> normal
                          `calm_intervals` consecutive intervals under calm_growth x the frozen
                          baseline
A video whose past is unknown must not page by that fact alone. A video has a zero past (so a
surge from nothing pages) when it was uploaded less than `warmup_intervals` before the book first
sees it, or is first seen after the book has watched the platform for `warmup_intervals` (it had
no views in all that time; an evicted video had none for `idle_ttl`; after a silence of the whole
platform that evicted every video the book watches afresh, as after a fresh start). Its baseline
then learns at the steady rate from its first view, as if those zeros went back as far as the
baseline remembers. Any other (seen in the book's first intervals: a fresh start over a backlog)
must show `warmup_intervals` of its own, learnt as a running mean.

Ranking damping, while rising or super_spike: once the views since the rise reach
`massive_reach`, the factor halves every `half_life` (down to `floor`); skips weigh `skip_weight`.

A normal video without views for `idle_ttl_ms` is dropped. A correction (a view later than its
interval's batch) adds to the kept series and the spike's views; states are not rewound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa

NORMAL, RISING, SUPER_SPIKE = "normal", "rising", "super_spike"
STATE_NAMES = (NORMAL, RISING, SUPER_SPIKE)
UNKNOWN_UPLOAD = -1


@dataclass(frozen=True)
class SpikeRules:
    interval_ms: int = 60_000
    baseline_half_life: int = 60  # intervals
    floor_share_of_mean: float = 0.2
    short_intervals: int = 3
    rise_growth: float = 3.0
    rise_z: float = 4.0
    super_growth: float = 10.0
    super_z: float = 8.0
    rise_window: int = 30
    calm_growth: float = 3.0
    calm_intervals: int = 30
    warmup_intervals: int = 10
    history: int = 60  # intervals of views kept per video (the alert's plot)
    idle_ttl_ms: int = 7_200_000
    massive_reach: int = 10_000
    half_life_ms: int = 3_600_000
    damping_floor: float = 0.1
    skip_weight: float = 2.0
    climb_growth: float = 2.0  # a rise whose views grew this much over its last rise_window goes on

    @classmethod
    def from_config(cls, sp) -> "SpikeRules":
        return cls(sp.interval, sp.baseline_half_life, sp.floor_share_of_mean, sp.short_intervals,
                   sp.rise_growth, sp.rise_z, sp.super_growth, sp.super_z, sp.rise_window, sp.calm_growth,
                   sp.calm_intervals, sp.warmup_intervals, sp.history, sp.idle_ttl, sp.damping.massive_reach,
                   sp.damping.half_life, sp.damping.floor, sp.damping.skip_weight, sp.climb_growth)

    @property
    def alpha(self) -> float:
        return 1.0 - 0.5 ** (1.0 / self.baseline_half_life)

    @property
    def zero_past_intervals(self) -> int:
        """Intervals a zero past counts as seen: enough that its baseline learns at `alpha` at once
        (the running mean's 1 / (seen + 1) is no larger), and at least the warmup."""
        return max(self.warmup_intervals, math.ceil(1.0 / self.alpha))


def anscombe_z(x, e):
    return 2.0 * (np.sqrt(np.asarray(x, dtype=np.float64) + 0.375) - np.sqrt(np.asarray(e, dtype=np.float64) + 0.375))


# Per-video columns: name -> dtype. Their values are the whole state with the two rings below.
COLUMNS = {
    "share": np.float64, "seen": np.int64, "known": np.bool_, "first_start": np.int64, "last_seen": np.int64,
    "state": np.int8, "started_at": np.int64, "frozen_share": np.float64, "rise_age": np.int64, "calm": np.int64,
    "spike_views": np.int64, "cum_views": np.float64, "cum_expected": np.float64, "massive_at": np.int64,
    "score": np.float64, "absorbed": np.int64, "last_views": np.int64, "last_regions": np.int64,
    "last_expected": np.float64,
}


# The book's bytes compressed: the rings are mostly small counts, and handing the bytes to Flink's
# state cost about as much as building them (a book of 34K videos with random columns: 22.3 MB
# plain, 3.5 MB in zstd for 6 ms more). Readers need no option: the stream says it is compressed.
SNAPSHOT_IPC = pa.ipc.IpcWriteOptions(compression="zstd")


@dataclass(frozen=True)
class Interval:
    """One interval's input: per video with views (arrays of equal length), platform totals."""
    start: int
    video_ids: list
    views: np.ndarray
    regions: np.ndarray
    uploaded_at: np.ndarray  # ms, UNKNOWN_UPLOAD when the metadata has none
    platform_views: int
    platform_videos: int

    def sorted(self) -> "Interval":
        order = sorted(range(len(self.video_ids)), key=self.video_ids.__getitem__)
        pick = np.asarray(order, dtype=np.int64)
        return Interval(self.start, [self.video_ids[i] for i in order], np.asarray(self.views)[pick],
                        np.asarray(self.regions)[pick], np.asarray(self.uploaded_at)[pick], self.platform_views,
                        self.platform_videos)


class Update(NamedTuple):
    """A NamedTuple, not a dataclass: an interval makes one per video with views, and a frozen
    dataclass's constructor took twice a NamedTuple's (17.8 against 8.7 ms for 27K)."""
    video_id: str
    as_of: int  # end of the newest interval stepped
    absorbed: int  # views taken in, corrections included (the feature version's second part)
    values: list  # the video_spikes group, in its order (operators/feature_groups.py)


class SpikeBook:
    """The spike state of every tracked video. `step` it intervals in order."""

    def __init__(self, rules: SpikeRules, capacity: int = 1024):
        self.rules = rules
        self.interval: int | None = None  # start of the newest interval stepped
        self.tick = -1  # the rings' newest column is tick mod their length
        # intervals stepped since the book began (restores included) or since the last silence of the
        # whole platform that evicted every video (step)
        self.watched = 0
        # consecutive intervals without a view on the platform, up to and including the newest (the
        # job sends only intervals with views, so there its silences are the gaps between them)
        self.silent = 0
        self.dispersion = 0.0  # the platform's noise beyond Poisson: var = e + dispersion x e^2
        self.dispersion_seen = 0  # intervals it was learnt from
        self.ids: list = []  # slot -> video id (None: free)
        self.index: dict = {}  # video id -> slot
        self.free: list = []
        self.live = np.zeros(capacity, dtype=bool)  # slot -> holds a video (ids[slot] is not None)
        self.c = {name: np.zeros(capacity, dtype=dt) for name, dt in COLUMNS.items()}
        self.series = np.zeros((capacity, rules.history), dtype=np.int64)
        self.expected = np.zeros((capacity, rules.short_intervals), dtype=np.float64)

    # -- stepping -----------------------------------------------------------------------------
    def step(self, iv: Interval) -> tuple[list[dict], list[Update]]:
        """Takes one interval; returns (transitions, feature updates: videos with views or a
        transition). An interval at or before the newest one is taken as corrections."""
        r = self.rules
        if self.interval is not None and iv.start <= self.interval:
            updates = [u for i, v in enumerate(iv.video_ids)
                       if (u := self.correct(v, iv.start, int(iv.views[i]))) is not None]
            return [], updates
        transitions = []
        silence = self.silent
        if self.interval is not None:
            gap = (iv.start - self.interval) // r.interval_ms - 1
            silence += max(0, gap)
            # empty intervals (the platform had no views); past this many nothing changes any more
            for _ in range(min(gap, max(r.history, r.calm_intervals, r.rise_window) + 1)):
                transitions += self._advance(self.interval + r.interval_ms, None, 0, 0)[0]
            if gap > 0:
                self.interval = iv.start - r.interval_ms
        # its videos' last views are at least silence + 1 intervals old: all of them go below
        if iv.platform_views and (silence + 1) * r.interval_ms >= r.idle_ttl_ms:
            # the whole platform was silent so long (an outage upstream, a night with no
            # traffic) that every video went idle and is evicted below, and the book saw nothing of
            # them meanwhile. It watches afresh, as after a fresh start: the videos it sees first
            # have an unknown past, not a zero one (a zero past paged on every popular video)
            self.watched = 0
        self.silent = 0 if iv.platform_views else silence + 1
        self._evict(iv.start)
        iv = iv.sorted()  # slots are taken in video order: the same state whatever the batch's order
        slots = self._admit(iv)
        more, changed = self._advance(iv.start, (slots, iv), iv.platform_views, iv.platform_videos)
        transitions += more
        emit = np.union1d(slots, changed) if len(changed) else np.sort(slots)
        return transitions, self._updates(emit)

    def _advance(self, start: int, batch, platform_views: int, platform_videos: int):
        r, c, n = self.rules, self.c, len(self.ids)
        self.interval = start
        self.tick += 1
        self.watched += 1
        pos = self.tick % r.history
        live = self.live[:n]
        views = np.zeros(n, dtype=np.int64)
        regions = np.zeros(n, dtype=np.int64)
        if batch is not None:
            slots, iv = batch
            views[slots] = iv.views
            regions[slots] = iv.regions
        floor = r.floor_share_of_mean * platform_views / max(1, platform_videos)
        share = c["share"][:n]
        expected = np.maximum(share * platform_views, floor)
        self.series[:n, pos] = views
        self.expected[:n, self.tick % r.short_intervals] = expected
        cols = [(self.tick - k) % r.history for k in range(r.short_intervals)]
        x = self.series[:n, cols].sum(axis=1)
        # newest first, whatever the ring's rotation: a restored book (its rings start anew) adds
        # the same floats in the same order as the run that never stopped
        e = self.expected[:n, [(self.tick - k) % r.short_intervals for k in range(r.short_intervals)]].sum(axis=1)
        z = anscombe_z(x, e) / np.sqrt(1.0 + self.dispersion * e / r.short_intervals)
        state = c["state"][:n]
        before = state.copy()

        # normal -> rising
        rise = live & (state == 0) & c["known"][:n] & (views > 0) & (x >= r.rise_growth * e) & (z >= r.rise_z)
        state[rise] = 1
        c["started_at"][:n][rise] = start
        c["frozen_share"][:n][rise] = share[rise]
        for name in ("rise_age", "calm", "spike_views", "cum_views", "cum_expected", "massive_at"):
            c[name][:n][rise] = 0

        # spiking: against the frozen baseline
        spiking = live & (state > 0)
        frozen = np.maximum(c["frozen_share"][:n] * platform_views, floor)
        growth = np.where(frozen > 0, views / np.where(frozen > 0, frozen, 1.0), 0.0)
        c["cum_views"][:n][spiking] += views[spiking]
        c["cum_expected"][:n][spiking] += frozen[spiking]
        c["spike_views"][:n][spiking] += views[spiking]
        c["rise_age"][:n][spiking] += 1
        massive = spiking & (c["massive_at"][:n] == 0) & (c["spike_views"][:n] >= r.massive_reach)
        c["massive_at"][:n][massive] = start + r.interval_ms
        age = np.maximum(c["rise_age"][:n], 1)
        cum_z = anscombe_z(c["cum_views"][:n], c["cum_expected"][:n]) / np.sqrt(
            1.0 + self.dispersion * c["cum_expected"][:n] / age)
        to_super = spiking & (state == 1) & (growth >= r.super_growth) & (cum_z >= r.super_z)
        state[to_super] = 2
        calm = spiking & (growth < r.calm_growth)
        c["calm"][:n][spiking] = np.where(calm[spiking], c["calm"][:n][spiking] + 1, 0)
        ended = spiking & (c["calm"][:n] >= r.calm_intervals)
        slow = spiking & (state == 1) & (c["rise_age"][:n] >= r.rise_window) & ~ended
        if r.climb_growth and slow.any():
            # still climbing: its views over the short window grew climb_growth-fold since rise_window
            # ago (views a viral video gets from shares double every 10 to 20 minutes; without this it
            # became its own new normal before it reached super_growth: bench.spike_quality --shapes viral).
            # Only the rises that would end are looked at: a few rows, not the whole book.
            ending = np.nonzero(slow)[0]
            then = self.series[ending][:, [(self.tick - r.rise_window - k) % r.history for k in range(r.short_intervals)]]
            slow[ending] = x[ending] < r.climb_growth * np.maximum(then.sum(axis=1), 1)
        if platform_views:
            # a slow climb's level (its views over the short window) is the video's new normal
            recent = self.series[:n, cols].sum(axis=1) / max(1, platform_views * r.short_intervals)
            share[slow] = recent[slow]
        state[ended | slow] = 0
        c["started_at"][:n][ended | slow] = 0

        # the baseline learns while normal, from the platform's intervals with views
        learn = live & (state == 0) & (before == 0)
        if platform_views:
            self._learn_dispersion(views, expected, learn & c["known"][:n] & (expected >= 1.0))
            alpha = np.maximum(1.0 / (c["seen"][:n] + 1.0), r.alpha)
            share[learn] += alpha[learn] * (views[learn] / platform_views - share[learn])
            c["seen"][:n][learn] += 1
            c["known"][:n] |= c["seen"][:n] >= r.warmup_intervals
        c["score"][:n] = np.where(live, z, 0.0)
        c["last_expected"][:n] = np.where(state > 0, frozen, expected)
        # every tracked video's newest interval is this one, with or without views
        c["last_views"][:n] = np.where(live, views, 0)
        c["last_regions"][:n] = np.where(live, regions, 0)
        if batch is not None:
            slots, iv = batch
            c["last_seen"][slots] = start
            c["absorbed"][slots] += iv.views
        changed = np.nonzero(state != before)[0]
        transitions = [self._transition(int(s), int(before[s]), start, int(views[s]), int(regions[s]),
                                        platform_views) for s in changed]
        return transitions, changed

    def _learn_dispersion(self, views: np.ndarray, expected: np.ndarray, use: np.ndarray) -> None:
        """Moment estimate of the noise beyond Poisson over the platform's normal videos
        (E[(x - e)^2 - x] = dispersion x e^2), exponentially weighted like the baselines, and like
        an unknown past a running mean over the first intervals: from 0 at the steady rate, noisy
        traffic (per-minute counts with a coefficient of variation of 1) looked Poisson for the
        first hours after a fresh start and paged on its noise. Videos far outside the current
        noise (a surge starting) are left out."""
        x, e = views[use].astype(np.float64), expected[use]
        if not len(x):
            return
        inside = np.abs(x - e) <= 6.0 * np.sqrt(e + self.dispersion * e * e)
        x, e = x[inside], e[inside]
        # exactly rounded sums (fsum): the same whatever the videos' slot order, which a restored
        # book (its slots renumbered, no free ones) does not share with the run that never stopped
        den = math.fsum((e * e).tolist())
        if den <= 0:
            return
        estimate = max(0.0, math.fsum(((x - e) ** 2 - x).tolist()) / den)
        self.dispersion_seen += 1
        self.dispersion += max(1.0 / self.dispersion_seen, self.rules.alpha) * (estimate - self.dispersion)

    def _evict(self, start: int) -> None:
        n = len(self.ids)
        if not n:
            return
        c = self.c
        gone = np.nonzero(self.live[:n] & (c["state"][:n] == 0) & (start - c["last_seen"][:n] >= self.rules.idle_ttl_ms))[0]
        for s in gone.tolist():
            del self.index[self.ids[s]]
            self.ids[s] = None
            self.live[s] = False
            self.free.append(s)

    def _admit(self, iv: Interval) -> np.ndarray:
        r, c = self.rules, self.c
        slots = np.empty(len(iv.video_ids), dtype=np.int64)
        floor = r.floor_share_of_mean * iv.platform_views / max(1, iv.platform_videos)
        new = []
        for i, v in enumerate(iv.video_ids):
            s = self.index.get(v)
            if s is None:
                s = self._allocate(v)
                new.append(i)
            slots[i] = s
        if new:
            new = np.array(new)
            s = slots[new]
            for name, dt in COLUMNS.items():
                c[name][s] = 0
            self.series[s] = 0
            self.expected[s] = floor
            c["first_start"][s] = iv.start
            uploaded = np.asarray(iv.uploaded_at)[new]
            fresh = (uploaded != UNKNOWN_UPLOAD) & (iv.start - uploaded < r.warmup_intervals * r.interval_ms)
            # once the book has watched the platform for the warmup, a video it has not seen had
            # no views in all that time (or none for idle_ttl, if it was evicted): its past is zeros
            zero_past = fresh | (self.watched >= r.warmup_intervals)
            c["known"][s] = zero_past
            # a zero past is as long as the baseline remembers: its share learns at the steady rate
            # from the first view, not as a running mean over a few intervals, which on a quiet
            # platform (a few views a minute per video) took the first minutes of a climb as the
            # new normal before it reached super_growth (bench.spike_quality --sizes 1)
            c["seen"][s] = np.where(zero_past, r.zero_past_intervals, 0)
        return slots

    def _allocate(self, video: str) -> int:
        if self.free:
            s = self.free.pop()
            self.ids[s] = video
        else:
            s = len(self.ids)
            if s == len(self.c["share"]):
                self._grow(2 * s)
            self.ids.append(video)
        self.index[video] = s
        self.live[s] = True
        return s

    def _grow(self, capacity: int) -> None:
        self.live = np.concatenate([self.live, np.zeros(capacity - len(self.live), dtype=bool)])
        for name, col in self.c.items():
            self.c[name] = np.concatenate([col, np.zeros(capacity - len(col), dtype=col.dtype)])
        self.series = np.vstack([self.series, np.zeros((capacity - len(self.series), self.series.shape[1]),
                                                       dtype=self.series.dtype)])
        self.expected = np.vstack([self.expected, np.zeros((capacity - len(self.expected), self.expected.shape[1]))])

    def correct(self, video: str, start: int, views: int) -> Update | None:
        """A late view count for an interval already stepped: added to the kept series and to the
        spike's views. A video the book no longer tracks is not changed."""
        s = self.index.get(video)
        if s is None or self.interval is None:
            return None
        r, c = self.rules, self.c
        back = (self.interval - start) // r.interval_ms
        if 0 <= back < r.history and start >= c["first_start"][s]:
            self.series[s, (self.tick - back) % r.history] += views
        c["absorbed"][s] += views
        if c["state"][s] > 0 and start >= c["started_at"][s]:
            c["spike_views"][s] += views
        return self._update(s)

    # -- state as bytes (the job's checkpointed state) -------------------------------------------
    def to_bytes(self) -> bytes:
        """The book as an Arrow IPC stream: one row per tracked video with declared column types,
        the rings oldest first, so a book restores under rules with other ring lengths."""
        r = self.rules
        live = np.nonzero(self.live[:len(self.ids)])[0]
        cols = {"video_id": pa.array([self.ids[s] for s in live.tolist()], pa.string())}
        for name in COLUMNS:
            cols[name] = pa.array(self.c[name][live])
        for name, ring in (("series", self.series), ("expected", self.expected)):
            k = ring.shape[1]
            chrono = ring[live][:, [(self.tick - j) % k for j in range(k - 1, -1, -1)]] if len(live) else ring[:0]
            cols[name] = pa.FixedSizeListArray.from_arrays(pa.array(chrono.ravel()), k)
        meta = {"format": "fyp-spike-book-1", "interval": "" if self.interval is None else str(self.interval),
                "watched": str(self.watched), "silent": str(self.silent), "dispersion": repr(self.dispersion),
                "stepped": str(self.watched),  # what a build before "watched" reads, should it be rolled back to
                "dispersion_seen": str(self.dispersion_seen)}
        table = pa.table(cols).replace_schema_metadata(meta)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=SNAPSHOT_IPC) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    @classmethod
    def from_bytes(cls, rules: SpikeRules, data: bytes) -> "SpikeBook":
        table = pa.ipc.open_stream(data).read_all()
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        book = cls(rules, capacity=max(1024, table.num_rows))
        book.interval = int(meta["interval"]) if meta.get("interval") else None
        book.watched = int(meta.get("watched", meta.get("stepped", 0)))  # "stepped": books before silences counted
        book.silent = int(meta.get("silent", 0))
        book.dispersion = float(meta.get("dispersion", 0.0))
        # a book written before the count: it learnt the noise for at most as many intervals as it
        # stepped, at the steady rate once that is as long as the baseline remembers
        book.dispersion_seen = int(meta.get("dispersion_seen", min(book.watched, rules.zero_past_intervals)))
        n = table.num_rows
        book.ids = table.column("video_id").to_pylist()
        book.index = {v: s for s, v in enumerate(book.ids)}
        book.live[:n] = True
        for name, dt in COLUMNS.items():
            if name in table.column_names:
                book.c[name][:n] = table.column(name).to_numpy(zero_copy_only=False).astype(dt)
        # the newest interval lands in the rings' last column: tick = length - 1 for both rings
        book.tick = rules.history * rules.short_intervals - 1
        for name, ring in (("series", book.series), ("expected", book.expected)):
            col = table.column(name).combine_chunks()
            old_k = col.type.list_size
            flat = col.flatten().to_numpy(zero_copy_only=False).reshape(n, old_k) if n else np.zeros((0, old_k))
            k = min(old_k, ring.shape[1])
            ring[:n, ring.shape[1] - k:] = flat[:, old_k - k:]
        return book

    # -- reading ------------------------------------------------------------------------------
    @property
    def as_of(self) -> int:
        return (self.interval or 0) + self.rules.interval_ms

    def __len__(self) -> int:
        return len(self.index)

    def features(self, video: str) -> list | None:
        s = self.index.get(video)
        return None if s is None else self._values(s)

    def _values(self, s: int) -> list:
        r, c = self.rules, self.c
        state = int(c["state"][s])
        damping, skip = 1.0, 1.0
        if state:
            skip = r.skip_weight
            if c["massive_at"][s]:
                damping = max(r.damping_floor, 0.5 ** ((self.as_of - int(c["massive_at"][s])) / r.half_life_ms))
        return [float(c["score"][s]), STATE_NAMES[state], int(c["started_at"][s]), float(damping), float(skip),
                int(c["last_views"][s]), float(c["last_expected"][s])]

    def _update(self, s: int) -> Update:
        return Update(self.ids[s], self.as_of, int(self.c["absorbed"][s]), self._values(s))

    def _updates(self, slots: np.ndarray) -> list[Update]:
        """_update of every slot in `slots`, in order: the columns read once as Python lists (an
        interval's updates are one per video with views; per slot, numpy scalar reads cost more than
        the step's array work)."""
        c, as_of = self.c, self.as_of
        state = c["state"][slots]
        spiking = state > 0
        damping = [1.0] * len(slots)
        # damped videos are few: their factor as _values computes it, one by one
        for i in np.nonzero(spiking & (c["massive_at"][slots] != 0))[0].tolist():
            damping[i] = self._values(int(slots[i]))[3]
        skip = np.where(spiking, self.rules.skip_weight, 1.0).tolist()
        names = [STATE_NAMES[k] for k in state.tolist()]
        columns = zip([self.ids[s] for s in slots.tolist()], c["absorbed"][slots].tolist(), c["score"][slots].tolist(),
                      names, c["started_at"][slots].tolist(), damping, skip, c["last_views"][slots].tolist(),
                      c["last_expected"][slots].tolist())
        return [Update(v, as_of, n, [score, name, started, d, k, views, expected])
                for v, n, score, name, started, d, k, views, expected in columns]

    def series_of(self, s: int) -> tuple[int, list]:
        """(start of the first interval, views per interval) kept for slot s, oldest first."""
        r = self.rules
        first = max(int(self.c["first_start"][s]), self.interval - (r.history - 1) * r.interval_ms)
        k = (self.interval - first) // r.interval_ms + 1
        cols = [(self.tick - j) % r.history for j in range(k - 1, -1, -1)]
        return first, self.series[s, cols].tolist()

    def _transition(self, s: int, before: int, start: int, views: int, regions: int, platform_views: int) -> dict:
        c = self.c
        base = float(c["last_expected"][s])
        series_start, series = self.series_of(s)
        return {"video_id": self.ids[s], "state": STATE_NAMES[int(c["state"][s])],
                "previous_state": STATE_NAMES[before], "at": start + self.rules.interval_ms,
                "spike_started_at": int(c["started_at"][s]), "score": float(c["score"][s]), "views": views,
                "baseline_rate": base, "growth": float(views / base) if base > 0 else 0.0, "regions": regions,
                "platform_views": int(platform_views),
                "share": float(views / platform_views) if platform_views else 0.0,
                "interval_ms": self.rules.interval_ms, "series_start": series_start, "series": series}


def replay(intervals, rules: SpikeRules):
    """The job's logic offline over `intervals` in order (Interval). Returns (transitions, the
    last feature update of each video, the book)."""
    book = SpikeBook(rules)
    transitions, last = [], {}
    for iv in intervals:
        ts, updates = book.step(iv)
        transitions += ts
        for u in updates:
            last[u.video_id] = u
    return transitions, last, book
