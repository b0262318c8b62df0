import math
import pickle
import random
import time
from dataclasses import replace

import numpy as np
import pytest

from anomaly.detector import DetectorParams, SpikeDetector, score_series
from anomaly.stages import (ExpTailLikelihood, FlatForest, Likelihood, RangeWatch, SeasonalBaseline,
                            SpectralResidual)


def _series(n=3000, seed=1):
    rng = random.Random(seed)
    return [10 + 3 * ((i % 288) / 288) + rng.gauss(0, 1) for i in range(n)]


def _daily(n=3000, seed=2, period=288, noise=0.3):
    rng = random.Random(seed)
    return [10 + 5 * math.sin(2 * math.pi * i / period) + rng.gauss(0, noise) for i in range(n)]


# every optional stage on, small enough for a test (Prophet has its own, slower test)
ALL_STAGES = DetectorParams(likelihood_short=3, range_tolerance=0.02, range_bypasses_refractory=True,
                            bypass_tolerance=0.05,
                            deviation_tail="exp", season_buffer=1200,
                            season_refresh=200, sr_window=32, iforest_history=400,
                            iforest_refit=300, iforest_trees=10)


@pytest.mark.parametrize("params", [DetectorParams(), DetectorParams.nab_tuned(), ALL_STAGES,
                                    DetectorParams.per_video()],
                         ids=["core", "nab-tuned", "all-stages", "per-video"])
def test_causal_scoring_a_prefix_gives_the_prefix_of_the_scores(params):
    values = _series()
    values[2000:2010] = [v + 40 for v in values[2000:2010]]
    full = score_series(values, params)
    for k in (1, 17, 999, 2003, 2500):
        assert score_series(values[:k], params) == full[:k]


def test_causal_with_prophet_refitted_periodically():
    params = DetectorParams(season_buffer=600, season_refresh=100, prophet_history=300,
                            prophet_refit=300, knn_length=0)
    values = _daily(1000)
    values[800] += 20
    full = score_series(values, params)
    for k in (650, 801, 1000):
        assert score_series(values[:k], params) == full[:k]
    assert full[800] >= params.alert_level


def test_scores_are_in_unit_interval_and_a_spike_outscores_the_noise():
    p = DetectorParams.nab_tuned()
    values = _series()
    values[2500] += 40
    scores = score_series(values, p)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[2500] == 1.0
    # the noise alerts rarely: a Gaussian series still sets the odd new extreme (range stage)
    noise_alerts = [i for i in range(1000, 2490) if scores[i] >= p.alert_level]
    assert len(noise_alerts) <= 5
    assert sorted(scores[1000:2490])[-10] < 0.999


def test_refractory_period_makes_one_event_one_alert():
    p = DetectorParams(refractory=100)
    values = _series()
    values[2150:2200] = [v + 40 for v in values[2150:2200]]
    scores = score_series(values, p)
    alerts = [i for i, s in enumerate(scores) if s >= p.alert_level and i >= 2150]
    # the 50-row surge is one alert, at its start, and the next 100 rows are held at 0
    assert alerts and alerts[0] in range(2150, 2153)
    assert all(s == 0.0 for s in scores[alerts[0] + 1: alerts[0] + 101])
    assert [a for a in alerts if a < 2200] == alerts[:1]


def test_the_tuned_configuration_is_what_score_series_and_the_eval_use_by_default():
    assert SpikeDetector().params == DetectorParams.nab_tuned()
    values = _series(600)
    assert score_series(values) == score_series(values, DetectorParams.nab_tuned())
    # the core defaults keep every added stage off (the per-video job relies on it)
    core = SpikeDetector(DetectorParams())
    assert (core.range, core.season, core.spectral, core.forest, core.prophet) == (None,) * 5


def test_timestamps_are_accepted_and_change_nothing():
    values = _series(800)
    d = SpikeDetector()
    with_time = [d.update(v, t_ms=60_000 * i) for i, v in enumerate(values)]
    assert with_time == score_series(values)


def test_a_pickled_detector_resumes_exactly_where_it_stopped():
    values = _series()
    values[2200:2210] = [v + 30 for v in values[2200:2210]]
    for params in (DetectorParams(), DetectorParams.nab_tuned(), ALL_STAGES):
        expected = score_series(values, params)
        d = SpikeDetector(params)
        first = [d.update(v) for v in values[:1500]]
        d = pickle.loads(pickle.dumps(d))
        assert first + [d.update(v) for v in values[1500:]] == expected


def test_per_video_config_is_small_and_fast():
    rng = random.Random(3)
    views = [math.log1p(max(0.0, rng.gauss(30, 8))) for _ in range(5500)]
    d = SpikeDetector(DetectorParams.per_video())
    for v in views[:500]:
        d.update(v)
    assert len(pickle.dumps(d)) < 8 * 1024
    best = math.inf
    for _ in range(3):  # best of three: the machine is shared
        start = time.perf_counter()
        for v in views[500:5500]:
            d.update(v)
        best = min(best, (time.perf_counter() - start) / 5000)
    assert best < 50e-6
    assert len(pickle.dumps(d)) < 8 * 1024


def test_per_video_config_keeps_the_jobs_fields_and_turns_every_optional_stage_off():
    p = DetectorParams.per_video()
    assert (p.baseline_window, p.surprise_history, p.knn_length, p.min_rows, p.scale_floor,
            p.refractory) == (60, 240, 0, 10, 0.5, 0)
    d = SpikeDetector(p)
    assert (d.shapes, d.range, d.season, d.spectral, d.forest, d.prophet) == (None,) * 6


def test_seasonal_period_is_found_from_the_values_alone():
    season = SeasonalBaseline(buffer=2000, refresh=288, min_lag=12, seasons=3, min_acf=0.3)
    for v in _daily(1500, period=144):
        season.push(v)
    assert season.period in (143, 144, 145)
    noise = SeasonalBaseline(buffer=2000, refresh=288, min_lag=12, seasons=3, min_acf=0.3)
    rng = random.Random(4)
    for _ in range(1500):
        noise.push(rng.gauss(0, 1))
    assert noise.period == 0 and noise.expected() is None


def test_seasonal_baseline_catches_a_value_normal_in_range_but_at_the_wrong_time():
    values = _daily(3000)
    # half a day in the wrong phase: every value is inside the usual range
    values[2500:2560] = [10 + 5 * math.sin(2 * math.pi * (i + 144) / 288) for i in range(2500, 2560)]
    base = DetectorParams(knn_length=0, refractory=0, season_buffer=2000)
    flat = score_series(values, replace(base, season_buffer=0))
    seasonal = score_series(values, base)
    assert max(seasonal[2500:2560]) >= base.alert_level
    assert max(flat[2500:2560]) < base.alert_level


def test_range_watch_flags_only_a_new_extreme_beyond_the_tolerance():
    r = RangeWatch(0.1)
    assert [r.update(x) for x in (0.0, 10.0, 5.0, 10.5, 11.6, -1.2)] == [False, False, False,
                                                                          False, True, True]


def test_a_new_extreme_inside_a_hold_is_reported_only_with_range_bypasses_refractory():
    values = _series()
    values[2000] += 15  # a new extreme: an alert, so row 2050 is inside a hold (150 rows)
    values[2050] += 40  # beyond everything seen, the row-2000 spike included
    values[2100] -= 3  # inside the hold, ordinary
    on = DetectorParams.nab_tuned()
    assert on.range_bypasses_refractory and not DetectorParams().range_bypasses_refractory
    off = replace(on, range_bypasses_refractory=False)
    with_bypass, without = score_series(values, on), score_series(values, off)
    assert with_bypass[2050] == 1.0 and without[2050] == 0.0
    assert with_bypass[2100] == without[2100] == 0.0
    # only new extremes inside a hold change, from 0 to 1 (the hold itself runs on unchanged)
    watch = RangeWatch(on.range_tolerance)
    new_extremes = {i for i, v in enumerate(values) if watch.update(v)}
    changed = [i for i, (a, b) in enumerate(zip(with_bypass, without)) if a != b]
    assert 2050 in changed and set(changed) <= new_extremes
    assert all(with_bypass[i] == 1.0 and without[i] == 0.0 for i in changed)


def test_range_watch_reports_how_far_beyond_the_seen_range_a_new_extreme_is():
    r = RangeWatch(0.02)
    assert [r.update(x) for x in (0.0, 10.0, 10.1, 10.5)] == [False, False, False, True]
    assert r.excess == pytest.approx(0.4 / 10.1)
    assert not r.update(5.0) and r.excess == 0.0


def test_inside_a_hold_only_a_clearly_stronger_extreme_bypasses_with_bypass_tolerance():
    values = _series()
    values[2000] += 15  # a new extreme: an alert, so rows 2030 and 2050 are inside its hold
    hi, lo = max(values[:2001]), min(values[:2001])
    values[2030] = hi + 0.03 * (hi - lo)  # a marginal new extreme (3 % beyond the seen range)
    values[2050] = hi + 0.5 * (hi - lo)  # a clearly stronger one (far beyond the 5 % tolerance)
    tuned = DetectorParams.nab_tuned()
    assert tuned.bypass_tolerance == 0.05
    assert DetectorParams().bypass_tolerance is None and DetectorParams.per_video().bypass_tolerance is None
    strict, lax = score_series(values, tuned), score_series(values, replace(tuned, bypass_tolerance=None))
    assert lax[2030] == 1.0 and strict[2030] == 0.0
    assert lax[2050] == strict[2050] == 1.0
    # the tolerance only removes bypass reports inside a hold: everything else is unchanged
    changed = [i for i, (a, b) in enumerate(zip(strict, lax)) if a != b]
    assert 2030 in changed and all(lax[i] == 1.0 and strict[i] == 0.0 for i in changed)


def test_exp_tail_likelihood_is_heavier_tailed_than_the_normal_fit_and_empirical_below_u():
    rng = random.Random(6)
    normal, heavy = Likelihood(1000), ExpTailLikelihood(1000)
    for _ in range(1000):  # log1p of |a Gaussian|: the deviation surprise of plain noise
        s = math.log1p(abs(rng.gauss(0, 1)))
        normal.tail(s)
        heavy.tail(s)
    # a typical surprise: the empirical tail (about 60 % of |N(0,1)| exceed 0.5)
    assert 0.5 < heavy.tail(math.log1p(0.5)) < 0.7
    # far out the normal fit of the surprises is ever more confident than the exponential tail
    # (8 sigma: ~1e-7 against ~3e-6; 16 sigma: ~5e-13 against ~1e-8), which stays monotone
    tails = [(normal.tail(math.log1p(z)), heavy.tail(math.log1p(z))) for z in (8.0, 16.0)]
    assert 10 * tails[0][0] < tails[0][1] < 1e-4
    assert 1000 * tails[1][0] < tails[1][1] < tails[0][1]
    young = ExpTailLikelihood(1000)
    assert all(young.tail(1.0) == 0.5 for _ in range(100))  # no opinion during warm-up


def test_unknown_deviation_tail_is_rejected():
    with pytest.raises(ValueError):
        score_series([1.0, 2.0, 3.0], replace(DetectorParams(), deviation_tail="cauchy"))


def test_likelihood_tail_puts_series_of_different_noise_on_one_scale():
    rng = random.Random(5)
    quiet, loud = Likelihood(1000), Likelihood(1000)
    for _ in range(1000):
        z = abs(rng.gauss(0, 1))
        quiet.tail(0.01 * z)
        loud.tail(100 * z)
    assert quiet.tail(0.01 * 5) == pytest.approx(loud.tail(100 * 5), rel=1e-6)
    assert quiet.tail(0.01 * 5) < 1e-4 < quiet.tail(0.01 * 1)


def test_spectral_residual_picks_out_a_spike_in_a_smooth_series():
    sr = SpectralResidual(64)
    rng = random.Random(7)
    values = [math.sin(2 * math.pi * i / 50) + rng.gauss(0, 0.05) for i in range(400)]
    values[300] += 3
    surprise = [sr.surprise(v) for v in values]
    assert surprise[:63] == [0.0] * 63  # until the window is full
    others = surprise[64:300] + surprise[301:]
    assert surprise[300] > 1.5 * max(others)


def test_flat_forest_scores_equal_scikit_learns():
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 4))
    forest = IsolationForest(n_estimators=20, max_samples=128, random_state=0).fit(x)
    flat = FlatForest(forest)
    rows = np.vstack([x[:20], [[6.0, 0, 0, 0], [0, -5.0, 4.0, 0]]])
    assert [flat.score(r) for r in rows] == pytest.approx(list(-forest.score_samples(rows)), rel=1e-9)
