"""Leave-one-category-out cross-validation (anomaly/cross_validation.py) on a hand-made corpus:
each category is scored with the parameter set and threshold chosen on the others only."""
import numpy as np
import pytest

from anomaly import nab
from anomaly.cross_validation import cross_validate

STD = nab.PROFILES["standard"]
WIN = [(40, 49)]


def scores(window_score: float, noise: float = 0.0, n: int = 100):
    s = np.zeros(n)
    s[45] = window_score
    if noise:
        s[20:31] = noise  # false alarms outside the window
    return s


def test_each_category_is_scored_with_what_the_others_chose():
    scored = {
        "quiet": [("a/x.csv", scores(0.9), WIN), ("b/y.csv", scores(0.8), WIN)],
        "noisy": [("a/x.csv", scores(0.9, noise=0.95), WIN), ("b/y.csv", scores(0.8, noise=0.95), WIN)],
    }
    cv = cross_validate(scored, STD)
    # a is held out: tuned on b, "quiet" at 0.8 (b's window score) detects a's window at 0.9
    # b is held out: tuned on a, "quiet" at 0.9 misses b's window (0.8): b's own best, 0.8, is not used
    a_raw = nab.file_score(scores(0.9), WIN, STD, 0.8)
    assert a_raw > 0
    assert cv["folds"] == {"a": ("quiet", 0.8, pytest.approx(a_raw)), "b": ("quiet", 0.9, -1.0)}
    assert cv["score"] == round(nab.normalised(a_raw - 1.0, 2, STD), 2)
    # in-sample, the threshold 0.8 would have found both windows: the held-out score is lower
    both = nab.normalised(sum(nab.file_score(s, w, STD, 0.8) for _, s, w in scored["quiet"]), 2, STD)
    assert cv["score"] < both
