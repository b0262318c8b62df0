import random

from anomaly.detector import DetectorParams, score_series


def _series(n=3000, seed=1):
    rng = random.Random(seed)
    return [10 + 3 * ((i % 288) / 288) + rng.gauss(0, 1) for i in range(n)]


def test_causal_scoring_a_prefix_gives_the_prefix_of_the_scores():
    values = _series()
    values[2000:2010] = [v + 40 for v in values[2000:2010]]
    full = score_series(values)
    for k in (1, 17, 999, 2003, 2500):
        assert score_series(values[:k]) == full[:k]


def test_scores_are_in_unit_interval_and_a_spike_outscores_the_noise():
    values = _series()
    values[2500] += 40
    scores = score_series(values)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[2500] >= 0.999
    assert max(scores[1000:2490]) < scores[2500]


def test_refractory_period_makes_one_event_one_alert():
    p = DetectorParams(refractory=100)
    values = _series()
    values[2000:2050] = [v + 40 for v in values[2000:2050]]
    scores = score_series(values, p)
    alerts = [i for i, s in enumerate(scores) if s >= p.alert_level and i >= 2000]
    # the 50-row surge is one alert, at its start, and the next 100 rows are held at 0
    assert alerts and alerts[0] in range(2000, 2003)
    assert all(s == 0.0 for s in scores[alerts[0] + 1: alerts[0] + 101])
    assert [a for a in alerts if a < 2050] == alerts[:1]
