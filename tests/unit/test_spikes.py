"""Per-video spike state (operators/spikes.py): transitions, hysteresis, gaps, damping, bounds."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from operators.spikes import NORMAL, RISING, SUPER_SPIKE, IntervalCounts, SpikeRules, VideoSpikes

MIN = 60_000
RULES = SpikeRules()


def feed_all(st: VideoSpikes, views, start: int = 0) -> list[dict]:
    out = []
    for i, v in enumerate(views):
        if v:
            out += st.feed(IntervalCounts(start + i * MIN, int(v), regions=3))
    return out


def ramp(rng, quiet: int, ramp_len: int, peak: float, plateau: int) -> np.ndarray:
    """An obscure video (about one view per 20 min), then a quadratic ramp to `peak`/min."""
    base = rng.poisson(0.05, quiet)
    up = rng.poisson(peak * (np.arange(1, ramp_len + 1) / ramp_len) ** 2)
    return np.concatenate([base, up, rng.poisson(peak, plateau)])


def test_surge_from_obscurity_rises_then_becomes_super_spike():
    rng = np.random.default_rng(1)
    views = ramp(rng, 120, 15, 750, 30)
    st = VideoSpikes(RULES)
    transitions = feed_all(st, views)
    states = [(t["previous_state"], t["state"]) for t in transitions]
    assert states[0][1] in (RISING, SUPER_SPIKE) and (states[-1][1] == SUPER_SPIKE)
    rising_at = transitions[0]["spike_started_at"] // MIN
    super_at = next(t["at"] for t in transitions if t["state"] == SUPER_SPIKE) // MIN - 1
    # rising opens at the first interval with >= min_rate views; super at the first with >= super_rate
    assert rising_at == int(np.argmax(views >= RULES.min_rate))
    assert super_at == int(np.argmax(views >= RULES.super_rate))
    t = next(t for t in transitions if t["state"] == SUPER_SPIKE)
    first = int(np.argmax(views > 0))  # the video's state begins at its first view
    assert t["series"] == [int(v) for v in views[max(first, super_at - RULES.history + 1):super_at + 1]]
    assert t["series_start"] == t["at"] - len(t["series"]) * MIN and t["baseline_rate"] < 1.0
    assert st.features()[1] == SUPER_SPIKE and st.features()[2] == rising_at * MIN


def test_busy_video_with_noise_and_daily_swing_never_rises():
    rng = np.random.default_rng(2)
    minutes = np.arange(24 * 60)
    rate = 300 * (1 + 0.5 * np.sin(2 * np.pi * minutes / 1440))
    st = VideoSpikes(RULES)
    assert feed_all(st, rng.poisson(rate)) == []
    assert st.state == NORMAL and st.features()[3] == 1.0 and st.features()[4] == 1.0


def test_video_first_seen_busy_must_show_its_baseline_first():
    st = VideoSpikes(RULES)
    first = feed_all(st, [400] * RULES.detector.min_rows)  # e.g. popular when the job started
    assert first == [] and st.state == NORMAL
    surge = feed_all(st, [400 * 30] * 3, start=st.as_of)
    assert [t["state"] for t in surge] == [SUPER_SPIKE]


def test_small_bursts_under_min_rate_stay_normal():
    rng = np.random.default_rng(3)
    views = rng.poisson(0.3, 600)
    views[300:303] = 15  # a burst, far above its baseline but under min_rate
    assert feed_all(VideoSpikes(RULES), views) == []


def test_gaps_are_zeros():
    rng = np.random.default_rng(4)
    views = ramp(rng, 100, 15, 400, 10)
    views[0], views[40:70] = 1, 0  # gaps shorter than the kept history
    a, b = VideoSpikes(RULES), VideoSpikes(RULES)
    ta = feed_all(a, views)  # intervals without views are skipped: feed fills the gaps
    tb = [t for i, v in enumerate(views) for t in b.feed(IntervalCounts(i * MIN, int(v), regions=3))]
    assert ta and ta == tb and a.features() == b.features() and a.score == b.score


def test_spike_ends_after_calm_intervals_even_without_views():
    rng = np.random.default_rng(5)
    st = VideoSpikes(RULES)
    feed_all(st, ramp(rng, 60, 10, 500, 5))
    assert st.state == SUPER_SPIKE
    end = st.as_of
    assert st.idle_until(end + (RULES.calm_intervals - 1) * MIN) == [] and st.state == SUPER_SPIKE
    back = st.idle_until(end + RULES.calm_intervals * MIN)
    assert [(t["previous_state"], t["state"]) for t in back] == [(SUPER_SPIKE, NORMAL)]
    assert back[0]["at"] == end + RULES.calm_intervals * MIN and st.features()[2] == 0


def test_hysteresis_one_calm_interval_does_not_end_a_spike():
    rng = np.random.default_rng(6)
    st = VideoSpikes(RULES)
    feed_all(st, ramp(rng, 60, 10, 500, 5))
    wobble = [500, 5, 500, 5, 500] * 10  # calm every other interval: the spike goes on
    assert feed_all(st, wobble, start=st.as_of) == [] and st.state == SUPER_SPIKE


def test_damping_halves_per_half_life_after_massive_reach():
    rules = SpikeRules(massive_reach=5000, half_life_ms=30 * MIN, damping_floor=0.2)
    st = VideoSpikes(rules)
    feed_all(st, [1] + [0] * 30 + [1000] * 5)  # 5,000 views: massive at the end of the 5th interval
    assert st.state == SUPER_SPIKE and st.damping() == 1.0 and st.skip_weight() == rules.skip_weight
    feed_all(st, [1000] * 30, start=st.as_of)
    assert st.damping() == pytest.approx(0.5)
    feed_all(st, [1000] * 90, start=st.as_of)
    assert st.damping() == rules.damping_floor


def test_correction_adds_to_history_without_rewinding():
    st = VideoSpikes(RULES)
    feed_all(st, [1, 0, 2, 3])
    before = (st.state, st.score, list(st.series), st.absorbed)
    assert st.feed(IntervalCounts(1 * MIN, 4)) == []
    assert st.series[-3] == before[2][-3] + 4 and st.absorbed == before[3] + 4 and st.score == before[1]


def test_state_is_small_and_bounded():
    rng = np.random.default_rng(7)
    st = VideoSpikes(RULES)
    feed_all(st, rng.poisson(50, 2000))
    size = len(pickle.dumps(st))
    assert len(st.series) == RULES.history and size < 16_000, size


def test_rules_from_config_apply_detector_overrides():
    from settings.config import load_config

    cfg = load_config(overrides={"spikes.detector": {"baseline_window": 30}, "spikes.calm_intervals": 7})
    rules = SpikeRules.from_config(cfg.spikes)
    assert rules.detector.baseline_window == 30 and rules.calm_intervals == 7 and rules.detector.scale_floor == 0.5
