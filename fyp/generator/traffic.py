"""Engagement traffic over an event-time span, as arrays first (fast, deterministic by seed),
then as JSON payloads in arrival order.

Arrival order differs from event time: `ooo_share` of events arrive up to `max_ooo_ms` late
(within the watermark's bound), `straggler_share` arrive between the bound and the allowed
lateness (the job applies them as corrections), `late_share` arrive far beyond the allowed
lateness (the job sends them to the late topic). `malformed_share` of payloads are broken on
purpose; injected super-spikes are returned as labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import orjson

from fyp.generator.catalog import CATEGORIES, REGIONS, Catalog, build_catalog


@dataclass
class TrafficSpec:
    seed: int = 7
    start_ms: int = 0
    duration_ms: int = 3_600_000
    mean_rate: float = 50.0  # events per second of event time, before the diurnal curve
    videos: int = 2000
    creators: int = 300
    users: int = 20_000
    zipf_s: float = 1.1
    new_video_share: float = 0.1
    diurnal_amplitude: float = 0.5
    ooo_share: float = 0.05
    max_ooo_ms: int = 500
    straggler_share: float = 0.0
    straggler_ms: tuple = (2_000, 30_000)
    late_share: float = 0.0
    late_ms: tuple = (600_000, 1_800_000)
    malformed_share: float = 0.0
    spikes: int = 0
    spike_peak_share: float = 0.25  # share of all traffic the spiking video reaches at its peak
    spike_ramp_ms: int = 900_000
    spike_length_ms: int = 3_600_000


@dataclass
class Traffic:
    events: list  # dicts in arrival order (malformed payloads are bytes)
    payloads: list  # bytes in arrival order
    uploads: list  # upload event dicts
    spikes: list = field(default_factory=list)  # labels
    kinds: list = field(default_factory=list)  # per payload: ok | ooo | straggler | late | malformed


def _diurnal(t_ms: np.ndarray, amplitude: float) -> np.ndarray:
    hours = (t_ms / 3_600_000.0) % 24
    return 1.0 + amplitude * np.sin(2 * math.pi * (hours - 14) / 24 + math.pi / 2)


def generate(spec: TrafficSpec) -> Traffic:
    rng = np.random.default_rng(spec.seed)
    end = spec.start_ms + spec.duration_ms
    cat = build_catalog(rng, spec.videos, spec.creators, spec.start_ms, end, spec.new_video_share, spec.zipf_s)

    # Event times: a Poisson process per second with a diurnal rate.
    seconds = np.arange(spec.start_ms, end, 1000, dtype=np.int64)
    counts = rng.poisson(spec.mean_rate * _diurnal(seconds, spec.diurnal_amplitude))
    times = np.repeat(seconds, counts) + rng.integers(0, 1000, size=int(counts.sum()))
    times = np.sort(times)
    videos = _pick_videos(rng, cat, times)
    spikes = []
    if spec.spikes:
        times, videos, spikes = _inject_spikes(rng, cat, spec, times, videos)
    events = _engagements(rng, spec, cat, times, videos)
    arrival, kinds = _arrival_times(rng, spec, times)
    order = np.argsort(arrival, kind="stable")
    events = [events[i] for i in order]
    kinds = [kinds[i] for i in order]
    payloads = [orjson.dumps(e) for e in events]
    if spec.malformed_share > 0:
        payloads, events, kinds = _add_malformed(rng, spec, payloads, events, kinds)
    uploads = [{"video_id": cat.video_ids[i], "creator_id": f"c{int(cat.creator_of[i]):05d}",
                "category": CATEGORIES[cat.category_of[i]][0], "video_duration_ms": int(cat.duration_ms[i]),
                "region": REGIONS[cat.region_of[i]], "upload_time": int(cat.upload_time[i])}
               for i in np.argsort(cat.upload_time, kind="stable")]
    return Traffic(events, payloads, uploads, spikes, kinds)


def _pick_videos(rng, cat: Catalog, times: np.ndarray) -> np.ndarray:
    """Zipf-like popularity among the videos already uploaded at each event's time."""
    order = np.argsort(cat.upload_time, kind="stable")
    uploaded_at = cat.upload_time[order]
    cum = np.cumsum(cat.popularity[order])
    available = np.searchsorted(uploaded_at, times, side="right")  # videos uploaded so far
    available = np.maximum(available, 1)
    u = rng.random(len(times)) * cum[available - 1]
    return order[np.minimum(np.searchsorted(cum, u, side="right"), available - 1)]


def _inject_spikes(rng, cat: Catalog, spec: TrafficSpec, times, videos):
    """Extra views for a few obscure videos: a ramp to a peak share of traffic, then a plateau."""
    obscure = np.argsort(cat.popularity)[: max(spec.spikes * 10, 10)]
    chosen = rng.choice(obscure, size=spec.spikes, replace=False)
    extra_t, extra_v, labels = [times], [videos], []
    span = spec.duration_ms - spec.spike_length_ms
    for v in chosen:
        onset = int(spec.start_ms + rng.integers(0, max(span, 1)))
        onset = max(onset, int(cat.upload_time[v]))
        peak = onset + spec.spike_ramp_ms
        end = min(onset + spec.spike_length_ms, spec.start_ms + spec.duration_ms)
        secs = np.arange(onset, end, 1000, dtype=np.int64)
        ramp = np.clip((secs - onset) / spec.spike_ramp_ms, 0, 1) ** 2
        rate = spec.mean_rate * spec.spike_peak_share * ramp * _diurnal(secs, spec.diurnal_amplitude)
        n = rng.poisson(rate)
        t = np.repeat(secs, n) + rng.integers(0, 1000, size=int(n.sum()))
        extra_t.append(t)
        extra_v.append(np.full(len(t), v))
        labels.append({"video_id": cat.video_ids[v], "onset_ms": onset, "peak_ms": peak, "end_ms": end,
                       "extra_views": int(len(t))})
    t = np.concatenate(extra_t)
    v = np.concatenate(extra_v)
    o = np.argsort(t, kind="stable")
    return t[o], v[o], labels


def _engagements(rng, spec: TrafficSpec, cat: Catalog, times, videos) -> list:
    n = len(times)
    category = cat.category_of[videos]
    table = np.array([c[2:6] for c in CATEGORIES])  # skip, like, share, comment
    rates = table[category]
    duration = cat.duration_ms[videos]
    skipped = rng.random(n) < rates[:, 0]
    engaged = ~skipped
    liked = engaged & (rng.random(n) < rates[:, 1] / (1 - rates[:, 0]))
    shared = engaged & (rng.random(n) < rates[:, 2] / (1 - rates[:, 0]))
    commented = engaged & (rng.random(n) < rates[:, 3] / (1 - rates[:, 0]))
    rewatches = np.where(engaged & (rng.random(n) < 0.08), rng.integers(1, 4, size=n), 0)
    fraction = np.where(skipped, rng.uniform(0.02, 0.15, size=n), rng.beta(5, 2, size=n))
    watch = (duration * fraction).astype(np.int64) + rewatches * duration
    user_rank = rng.zipf(1.2, size=n)
    users = (user_rank * 2654435761) % spec.users
    user_region = (users * 40503) % len(REGIONS)
    home = cat.region_of[videos]
    region = np.where(rng.random(n) < 0.7, user_region, home)
    ids = rng.integers(0, 2**62, size=n)
    vid = cat.video_ids
    return [
        {"event_id": f"e{int(ids[i]):x}-{i}", "user_id": f"u{int(users[i]):07d}", "video_id": vid[videos[i]],
         "event_time": int(times[i]), "region": REGIONS[region[i]], "watch_time_ms": int(watch[i]),
         "video_duration_ms": int(duration[i]), "liked": bool(liked[i]), "shared": bool(shared[i]),
         "commented": bool(commented[i]), "skipped": bool(skipped[i]), "rewatches": int(rewatches[i])}
        for i in range(n)
    ]


def _arrival_times(rng, spec: TrafficSpec, times):
    n = len(times)
    u = rng.random(n)
    delay = np.zeros(n, dtype=np.int64)
    kinds = np.full(n, "ok", dtype=object)
    a = spec.ooo_share
    b = a + spec.straggler_share
    c = b + spec.late_share
    ooo = u < a
    strag = (u >= a) & (u < b)
    late = (u >= b) & (u < c)
    delay[ooo] = rng.integers(1, max(spec.max_ooo_ms, 2), size=int(ooo.sum()))
    delay[strag] = rng.integers(*spec.straggler_ms, size=int(strag.sum()))
    delay[late] = rng.integers(*spec.late_ms, size=int(late.sum()))
    kinds[ooo], kinds[strag], kinds[late] = "ooo", "straggler", "late"
    return times + delay, list(kinds)


MALFORMED_KINDS = ("truncated", "wrong_type", "missing_field", "negative", "unknown_field", "not_object",
                   "bad_region", "zero_duration")


def _add_malformed(rng, spec: TrafficSpec, payloads, events, kinds):
    out_p, out_e, out_k = [], [], []
    for p, e, k in zip(payloads, events, kinds):
        out_p.append(p)
        out_e.append(e)
        out_k.append(k)
        if rng.random() < spec.malformed_share:
            kind = MALFORMED_KINDS[int(rng.integers(0, len(MALFORMED_KINDS)))]
            out_p.append(_corrupt(kind, e, p))
            out_e.append(None)
            out_k.append("malformed")
    return out_p, out_e, out_k


def _corrupt(kind: str, e: dict, p: bytes) -> bytes:
    bad = dict(e)
    bad["event_id"] = e["event_id"] + "-bad"
    if kind == "truncated":
        return p[: len(p) // 2]
    if kind == "wrong_type":
        bad["watch_time_ms"] = str(e["watch_time_ms"])
    elif kind == "missing_field":
        del bad["video_id"]
    elif kind == "negative":
        bad["watch_time_ms"] = -5
    elif kind == "unknown_field":
        bad["surprise"] = 1
    elif kind == "not_object":
        return orjson.dumps([bad])
    elif kind == "bad_region":
        bad["region"] = "usa"
    elif kind == "zero_duration":
        bad["video_duration_ms"] = 0
    return orjson.dumps(bad)
