"""Per-minute view counts of a whole platform with labelled super-spikes, for judging the spike
rules at any platform size (bench/spike_quality.py, tests). Counts, not events: a day of 100K
events/s is 8.6 billion events, but only its per-(video, minute) counts reach the spike rules
(the job's windows compute them, and tests check those windows against an oracle).

The platform: `videos` videos with Zipf popularity whose log-popularity drifts as a random walk
(`drift_per_hour`), a daily curve (`diurnal_amplitude`) and a weekly one (`weekly_amplitude`),
per video-minute noise beyond Poisson (gamma, shape `dispersion`), and new uploads arriving all
the time with ordinary popularity. On top, `spikes_per_day` labelled super-spikes of four shapes
on obscure videos (each its own) or new uploads, each peaking at `peak_multiple` (log-uniform in a
range) times the platform's mean views per active video:
- step: the video jumps to its peak in one minute;
- ramp: linear to the peak over 10 to 30 minutes;
- spread: a quarter of the peak in one region for 10 to 20 minutes, then the peak in five;
- upload: a video uploaded at the onset takes off within 5 minutes (an ordinary upload grows into
  its popularity over 1 to 4 hours);
- viral (only when `shapes` names it): views double every 10 to 20 minutes, from a 64th of the
  peak to the peak (an hour or two), as a video spreading by shares does.
A news event (`event_at_hours`, off by default) clusters the spikes as one does in real traffic:
`event_share` of them start within `event_hours` after it, and the platform's ordinary traffic
rises by `event_lift` (reached in 30 minutes, held for those hours, gone 2 hours later).
A label's `ref_ms` is the start of the first minute in which the video's views exceed ten times
its baseline (`baseline_views`: its expected views per minute without the spike, at the onset;
counted as at least one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MINUTE_MS = 60_000
SHAPES = ("step", "ramp", "spread", "upload")  # the default mix
ALL_SHAPES = SHAPES + ("viral",)


@dataclass(frozen=True)
class CountTrafficSpec:
    rate: float = 1000.0  # events (views) per second, mean over the day
    videos: int = 3000
    hours: float = 24.0
    seed: int = 1
    start_ms: int = 1_782_000_000_000  # 2026-06-21 00:00 UTC; the curves run on hours since the start
    zipf_s: float = 1.1
    diurnal_amplitude: float = 0.5
    weekly_amplitude: float = 0.1
    drift_per_hour: float = 0.15  # standard deviation of log popularity per hour
    dispersion: float = 30.0  # gamma shape of per video-minute noise (larger: closer to Poisson)
    uploads_per_hour: float = 20.0  # ordinary new videos
    spikes_per_day: float = 24.0
    peak_multiple: tuple = (5.0, 50.0)  # spike peak / platform mean views per active video
    spike_minutes: tuple = (30, 90)  # how long the peak holds
    shapes: tuple = SHAPES  # the spikes' shapes, in turn
    event_at_hours: float | None = None  # a news event this long after the start; None: none
    event_share: float = 0.75  # of the spikes, the share whose onsets follow the event
    event_hours: float = 12.0  # within this long after it
    event_lift: float = 0.5  # the platform's ordinary traffic rises by this share meanwhile


@dataclass
class CountTraffic:
    minutes: np.ndarray  # interval starts, ms
    video_ids: list  # index -> id
    counts: np.ndarray  # (videos, minutes) views
    regions: np.ndarray  # (videos, minutes) distinct regions with views
    platform_views: np.ndarray  # per minute
    platform_videos: np.ndarray  # per minute: videos with views
    labels: list  # dicts: video_id, shape, onset_ms, ref_ms, end_ms, peak_views
    uploaded_at: np.ndarray  # per video, ms (catalog videos: 30 days before the start)

    def rows(self):
        """(video_id, start, views, regions, platform views, platform videos) for every (video,
        minute) with views, sorted by video then minute: the job's per-video input."""
        vi, ti = np.nonzero(self.counts)
        for v, t in zip(vi.tolist(), ti.tolist()):
            yield (self.video_ids[v], int(self.minutes[t]), int(self.counts[v, t]), int(self.regions[v, t]),
                   int(self.platform_views[t]), int(self.platform_videos[t]))

    def minutes_with_views(self):
        """Per minute: (start, video indexes with views, their views, regions): the job's batches."""
        for t in range(len(self.minutes)):
            vi = np.nonzero(self.counts[:, t])[0]
            yield int(self.minutes[t]), vi, self.counts[vi, t], self.regions[vi, t]

    @property
    def video_minutes(self) -> int:
        return int(np.count_nonzero(self.counts))


def _season(minutes_ms: np.ndarray, spec: CountTrafficSpec) -> np.ndarray:
    hours = (minutes_ms - spec.start_ms) / 3_600_000.0
    daily = 1.0 + spec.diurnal_amplitude * np.sin(2 * math.pi * (hours % 24 - 14) / 24 + math.pi / 2)
    weekly = 1.0 + spec.weekly_amplitude * np.sin(2 * math.pi * (hours % 168) / 168)
    return daily * weekly


def _event_lift(t: np.ndarray, spec: CountTrafficSpec) -> np.ndarray:
    """Per minute, the factor on the platform's ordinary traffic (1 without a news event)."""
    if spec.event_at_hours is None:
        return np.ones(len(t))
    since = t - spec.event_at_hours * 60
    held = spec.event_hours * 60
    return 1.0 + spec.event_lift * np.clip(since / 30, 0, 1) * np.clip(1 - (since - held) / 120, 0, 1)


def generate_counts(spec: CountTrafficSpec) -> CountTraffic:
    rng = np.random.default_rng(spec.seed)
    n_min = int(spec.hours * 60)
    minutes = spec.start_ms + MINUTE_MS * np.arange(n_min, dtype=np.int64)
    n_up = rng.poisson(spec.uploads_per_hour * spec.hours)
    n_spikes = rng.poisson(spec.spikes_per_day * spec.hours / 24)
    n_vid = spec.videos + n_up + n_spikes
    ids = [f"v{i}" for i in range(n_vid)]

    # ordinary popularity: Zipf weights, a random walk of log popularity, uploads appear mid-stream
    ranks = np.empty(n_vid - n_spikes, dtype=np.int64)
    ranks[: spec.videos] = rng.permutation(spec.videos) + 1
    # ordinary uploads rank among the catalog's less popular four fifths
    ranks[spec.videos:] = rng.integers(spec.videos // 5, spec.videos, size=n_up) + 1
    logw = -spec.zipf_s * np.log(ranks)
    steps = rng.normal(0.0, spec.drift_per_hour / math.sqrt(60), size=(n_vid - n_spikes, n_min))
    logw = logw[:, None] + np.cumsum(steps, axis=1)
    born = np.zeros(n_vid - n_spikes, dtype=np.int64)
    born[spec.videos:] = rng.integers(0, n_min, size=n_up)
    # an ordinary upload grows into its popularity over 1 to 4 hours (organic reach, not a surge)
    grow = np.ones(n_vid - n_spikes)
    grow[spec.videos:] = rng.uniform(60, 240, size=n_up)
    reach = np.clip((np.arange(n_min)[None, :] - born[:, None] + 1) / grow[:, None], 0, 1) ** 2
    w = np.exp(logw) * reach
    total = spec.rate * 60 * _season(minutes, spec) * _event_lift(np.arange(n_min), spec)
    lam = w / w.sum(axis=0, keepdims=True) * total[None, :]
    noise = rng.gamma(spec.dispersion, 1.0 / spec.dispersion, size=lam.shape) if spec.dispersion else 1.0
    counts = rng.poisson(lam * noise)
    caps = np.zeros((n_vid, n_min), dtype=np.int8)  # distinct regions a video's views can come from
    caps[: n_vid - n_spikes] = rng.integers(1, 6, size=n_vid - n_spikes, dtype=np.int8)[:, None]
    counts = np.vstack([counts, np.zeros((n_spikes, n_min), dtype=counts.dtype)])

    active_mean = counts.sum(axis=0) / np.maximum(1, np.count_nonzero(counts, axis=0))
    labels = []
    obscure = np.argsort(lam.mean(axis=1))[: max(1, (spec.videos * 3) // 4)]  # the quieter three quarters
    obscure = obscure[born[obscure] == 0]
    t = np.arange(n_min)
    clustered = round(spec.event_share * n_spikes) if spec.event_at_hours is not None else 0
    spiked = set()
    for k in range(n_spikes):
        shape = spec.shapes[k % len(spec.shapes)]
        onset = int(rng.integers(120, max(121, n_min - 60)))  # two hours of history before any onset
        if k < clustered:  # drawn after the draw above, so that traffic without an event stays as it was
            event = max(120, int(spec.event_at_hours * 60))
            onset = int(rng.integers(event, max(event + 1, min(event + int(spec.event_hours * 60), n_min - 60))))
        hold = int(rng.integers(*spec.spike_minutes))
        peak = math.exp(rng.uniform(*np.log(spec.peak_multiple))) * active_mean[onset]
        climb = 0  # minutes before the peak holds (viral only)
        if shape == "upload":
            row, base = n_vid - n_spikes + k, np.zeros(n_min)  # a row of its own: it exists from the onset
            up = np.clip((t - onset + 1) / 5, 0, 1)
            caps[row] = np.where(t >= onset, 3, 0)
        else:
            row = int(rng.choice(obscure))
            while row in spiked and len(spiked) < len(obscure):
                # a video of its own per spike: a second surge of one video within the alerter's
                # cooldown would be silenced by design and scored as a miss
                row = int(rng.choice(obscure))
            spiked.add(row)
            base = lam[row]
            ramp_len = int(rng.integers(10, 31)) if shape == "ramp" else 1
            up = np.clip((t - onset + 1) / ramp_len, 0, 1)
            if shape == "viral":
                doubling = float(rng.uniform(10, 20))
                climb = int(6 * doubling)
                up = np.where(t < onset, 0.0, np.minimum(1.0, 2.0 ** ((t - onset) / doubling - 6)))
            if shape == "spread":
                first = int(rng.integers(10, 21))
                up = np.where(t < onset + first, up * 0.25, up)
                caps[row] = np.where(t >= onset + first, 5, np.where(t >= onset, 1, caps[row]))
        held = onset + climb + hold
        up = np.where(t < held, up, np.clip(1 - (t - held) / 30, 0, 1))  # then fades in 30 min
        season = _season(minutes, spec) / _season(minutes[onset:onset + 1], spec)
        counts[row] += rng.poisson(up * peak * season)
        over = np.nonzero((t >= onset) & (counts[row] > 10 * np.maximum(base, 1.0)))[0]
        labels.append({"video_id": ids[row], "shape": shape, "onset_ms": int(minutes[onset]),
                       "ref_ms": int(minutes[over[0]]) if len(over) else None,
                       "end_ms": int(minutes[min(n_min - 1, held + 30)]),
                       "baseline_views": round(float(base[onset]), 3),
                       "peak_views": int(counts[row, onset:held].max())})
    regions = np.minimum(counts, caps)
    uploaded = np.full(n_vid, spec.start_ms - 30 * 86_400_000, dtype=np.int64)
    uploaded[spec.videos: n_vid - n_spikes] = minutes[born[spec.videos:]]
    for k in range(n_spikes):
        row = n_vid - n_spikes + k
        if counts[row].any():
            uploaded[row] = minutes[np.argmax(counts[row] > 0)]
    return CountTraffic(uploaded_at=uploaded, minutes=minutes, video_ids=ids, counts=counts, regions=regions,
                        platform_views=counts.sum(axis=0), platform_videos=np.count_nonzero(counts, axis=0),
                        labels=labels)
