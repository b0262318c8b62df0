"""Super-spike state per video: plain Python over per-interval view counts.

A video's series is its views per interval (1 min by default); the job feeds one row per interval
in which the video had views, and the gaps are zeros. Each interval:

1. The anomaly detector (anomaly/detector.py, the same code `fyp anomaly score` runs) scores
   log1p(views) against the video's own past. Counts are Poisson-noisy and mostly 0 for an obscure
   video, so the robust scale has a floor (`scale_floor`): a jump from 0 to 2 views is not news.
2. A state machine with hysteresis turns scores and rates into a state:
     normal -> rising       score >= rise_score, views >= min_rate and growth >= rise_growth,
                            where growth = views / max(1, baseline) and baseline is the mean
                            views per interval over the kept history before this interval
     rising -> super_spike  views >= super_rate and growth >= super_growth, growth now measured
                            against the baseline frozen when the video started rising (during a
                            spike the history fills with the spike itself)
     rising | super_spike -> normal
                            after calm_intervals consecutive calm intervals: growth against the
                            frozen baseline under calm_growth, or views under min_rate
   The score only opens a spike; rates keep and close it. A score adapts within minutes (the
   spike becomes its own baseline) while a super-spike can last hours.
3. Ranking damping, while rising or super_spike: once the views since the spike started reach
   `massive_reach`, the factor halves every `half_life` (down to `floor`): content that already has
   massive reach is decayed so it does not flood every feed; and skips weigh `skip_weight` (a skip
   during a spike is a stronger signal that the surge is not for this user).

Per-video state is bounded: a small detector (VIDEO_DETECTOR), `history` counts, a few numbers.
Intervals arrive in order (the job's tumbling windows fire by watermark); a late interval (a
correction) only adds to the kept history: the detector and the states are not rewound.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

from anomaly.detector import DetectorParams, SpikeDetector

NORMAL, RISING, SUPER_SPIKE = "normal", "rising", "super_spike"
SEED_INTERVALS = 30  # zeros a new state's detector starts from

# The per-video detector: small windows (state ~ a few KB), no shape stage, no refractory period
# (the state machine debounces), a scale floor of 0.5 in log1p units for sparse counts.
VIDEO_DETECTOR = DetectorParams(baseline_window=60, short_window=3, knn_length=0, surprise_history=240,
                                min_rows=10, refractory=0, scale_floor=0.5)


@dataclass(frozen=True)
class SpikeRules:
    interval_ms: int = 60_000
    rise_score: float = 0.99
    min_rate: float = 20.0
    rise_growth: float = 3.0
    super_rate: float = 100.0
    super_growth: float = 10.0
    calm_growth: float = 3.0
    calm_intervals: int = 30
    history: int = 120
    massive_reach: int = 10_000
    half_life_ms: int = 3_600_000
    damping_floor: float = 0.1
    skip_weight: float = 2.0
    detector: DetectorParams = VIDEO_DETECTOR

    @classmethod
    def from_config(cls, sp) -> "SpikeRules":
        return cls(sp.interval, sp.rise_score, sp.min_rate, sp.rise_growth, sp.super_rate, sp.super_growth,
                   sp.calm_growth, sp.calm_intervals, sp.history, sp.damping.massive_reach, sp.damping.half_life,
                   sp.damping.floor, sp.damping.skip_weight, replace(VIDEO_DETECTOR, **sp.detector))


@dataclass(frozen=True)
class IntervalCounts:
    start: int  # interval start, event time ms
    views: int
    regions: int = 0  # distinct regions with views
    shares: int = 0
    skips: int = 0


@dataclass
class VideoSpikes:
    """One video's spike state. `feed` it intervals in order; it returns state transitions."""
    rules: SpikeRules
    detector: SpikeDetector = None
    last_start: int | None = None  # start of the newest interval fed
    series: deque = None  # views per interval, the newest last
    state: str = NORMAL
    started_at: int = 0  # start of the interval the current spike began in (0: normal)
    frozen_baseline: float = 0.0
    calm: int = 0
    spike_views: int = 0  # views since the spike started
    massive_at: int = 0  # end of the interval in which spike_views reached massive_reach (0: not yet)
    score: float = 0.0
    absorbed: int = 0  # views taken in, corrections included (the feature version's second part)
    last: IntervalCounts = field(default_factory=lambda: IntervalCounts(0, 0))

    def __post_init__(self):
        if self.detector is None:
            self.detector = SpikeDetector(self.rules.detector)
        if self.series is None:
            self.series = deque(maxlen=self.rules.history)

    # -- feeding ------------------------------------------------------------------------------
    def feed(self, counts: IntervalCounts) -> list[dict]:
        """Takes one interval's counts; fills the gap since the last interval with zeros (at most
        `history` of them: older zeros would not change the kept history). Returns transitions."""
        r = self.rules
        if self.last_start is not None and counts.start <= self.last_start:
            self._correct(counts)
            return []
        transitions = []
        if self.last_start is None and counts.views < r.min_rate:
            # A video first seen with few views is new or was idle past the state's TTL: its past
            # is taken as obscurity (zeros), so a surge from nothing is scored from the start. One
            # first seen busy (at job start, or launched big) has an unknown past: it must show
            # its own baseline for the detector's min_rows intervals before it can rise.
            for _ in range(SEED_INTERVALS):
                self.detector.update(0.0)
        if self.last_start is not None:
            gap = (counts.start - self.last_start) // r.interval_ms - 1
            first = max(self.last_start + r.interval_ms, counts.start - r.history * r.interval_ms)
            for start in range(first, counts.start, r.interval_ms) if gap > 0 else ():
                transitions += self._step(IntervalCounts(start, 0))
        return transitions + self._step(counts)

    def idle_until(self, end: int) -> list[dict]:
        """Advances through empty intervals up to (not including) the one starting at `end`:
        a spiking video that stopped getting views must still calm down."""
        r = self.rules
        if self.last_start is None:
            return []
        transitions = []
        first = max(self.last_start + r.interval_ms, end - r.history * r.interval_ms)
        for start in range(first, end, r.interval_ms):
            transitions += self._step(IntervalCounts(start, 0))
        return transitions

    def _correct(self, counts: IntervalCounts) -> None:
        back = (self.last_start - counts.start) // self.rules.interval_ms
        if back < len(self.series):
            self.series[len(self.series) - 1 - back] += counts.views
        self.absorbed += counts.views
        if self.state != NORMAL and counts.start >= self.started_at:
            self.spike_views += counts.views

    def _step(self, c: IntervalCounts) -> list[dict]:
        r = self.rules
        baseline = self.baseline()
        self.score = self.detector.update(math.log1p(c.views))
        self.series.append(c.views)
        self.last_start, self.last, self.absorbed = c.start, c, self.absorbed + c.views
        before = self.state
        if self.state == NORMAL:
            if (self.score >= r.rise_score and c.views >= r.min_rate
                    and c.views >= r.rise_growth * max(baseline, 1.0)):
                self.state, self.started_at, self.frozen_baseline = RISING, c.start, baseline
                self.calm, self.spike_views, self.massive_at = 0, 0, 0
        if self.state != NORMAL:
            self._spiking(c)
        if self.state == before:
            return []
        return [self._transition(before, c)]

    def _spiking(self, c: IntervalCounts) -> None:
        r = self.rules
        self.spike_views += c.views
        if not self.massive_at and self.spike_views >= r.massive_reach:
            self.massive_at = c.start + r.interval_ms
        growth = c.views / max(self.frozen_baseline, 1.0)
        if self.state == RISING and c.views >= r.super_rate and growth >= r.super_growth:
            self.state = SUPER_SPIKE
        if c.views < r.min_rate or growth < r.calm_growth:
            self.calm += 1
            if self.calm >= r.calm_intervals:
                self.state, self.started_at, self.frozen_baseline = NORMAL, 0, 0.0
                self.spike_views, self.massive_at, self.calm = 0, 0, 0
        else:
            self.calm = 0

    def expired(self, next_start: int, idle_ttl_ms: int) -> bool:
        """A normal video whose next interval starts `idle_ttl_ms` or more after its newest one
        starts over (its state is dropped); a spiking one never expires."""
        return self.state == NORMAL and next_start >= self.as_of + idle_ttl_ms

    # -- reading ------------------------------------------------------------------------------
    def baseline(self) -> float:
        """Mean views per interval over the kept history (before the newest interval is added)."""
        return sum(self.series) / len(self.series) if self.series else 0.0

    @property
    def as_of(self) -> int:
        """End of the newest interval fed."""
        return (self.last_start or 0) + self.rules.interval_ms

    def damping(self) -> float:
        r = self.rules
        if self.state == NORMAL or not self.massive_at:
            return 1.0
        return max(r.damping_floor, 0.5 ** ((self.as_of - self.massive_at) / r.half_life_ms))

    def skip_weight(self) -> float:
        return 1.0 if self.state == NORMAL else self.rules.skip_weight

    def features(self) -> list:
        """Values of the video_spikes feature group, in its order (schemas/features.py)."""
        base = self.frozen_baseline if self.state != NORMAL else self.baseline_before_last()
        return [float(self.score), self.state, int(self.started_at), float(self.damping()),
                float(self.skip_weight()), int(self.last.views), float(base)]

    def baseline_before_last(self) -> float:
        s = list(self.series)[:-1]
        return sum(s) / len(s) if s else 0.0

    def _transition(self, before: str, c: IntervalCounts) -> dict:
        base = self.frozen_baseline if self.state != NORMAL else self.baseline_before_last()
        series = list(self.series)
        return {"state": self.state, "previous_state": before, "at": c.start + self.rules.interval_ms,
                "spike_started_at": int(self.started_at), "score": float(self.score), "views": int(c.views),
                "baseline_rate": float(base), "growth": float(c.views / max(base, 1.0)), "regions": int(c.regions),
                "interval_ms": self.rules.interval_ms,
                "series_start": c.start - (len(series) - 1) * self.rules.interval_ms, "series": series}


def replay(rows, rules: SpikeRules, idle_ttl_ms: int, end_watermark: int | None = None):
    """The job's per-video logic offline: `rows` are (video_id, IntervalCounts) sorted by video,
    then interval. Returns (transitions with video_id, final state per video). A bounded run ends
    with no timer firing after the last interval (end_watermark None); a stream whose watermark
    stopped at `end_watermark` has fired every calm timer up to it (jobs/spikes_fn.py)."""
    transitions, states = [], {}

    def finish(video, st):
        deadline = st.as_of + (rules.calm_intervals - st.calm) * rules.interval_ms - 1
        if end_watermark is not None and st.state != NORMAL and deadline <= end_watermark:
            transitions.extend({"video_id": video, **t} for t in st.idle_until(deadline + 1))
        states[video] = st

    video, st = None, None
    for vid, counts in rows:
        if vid != video:
            if st is not None:
                finish(video, st)
            video, st = vid, None
        if st is not None and st.expired(counts.start, idle_ttl_ms):
            st = None
        if st is None:
            st = VideoSpikes(rules)
        transitions.extend({"video_id": vid, **t} for t in st.feed(counts))
    if st is not None:
        finish(video, st)
    return transitions, states
