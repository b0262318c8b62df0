"""The NAB scorer (anomaly/nab.py) on hand-computed cases.

Arithmetic used throughout: scaled_sigmoid(x) = 2/(1+e^(5x)) - 1 = tanh(-5x/2), so
MAX_TP = scaled_sigmoid(-1) = tanh(2.5) = 0.98661430.
The standard file: N = 100 rows, P = min(floor(15.0), 750) = 15, one window at rows 40..49 (W = 10).
Standard profile: tp 1, fp 0.11, fn 1.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from anomaly import nab

STD = nab.PROFILES["standard"]
LOW_FN = nab.PROFILES["reward_low_FN_rate"]
WIN = [(40, 49)]
# the NAB copy beside the repository (../shared), as the project's notes give it
NAB_COPY = Path(__file__).resolve().parents[3] / "shared" / "data" / "nab"


def alerts(*rows, n=100):
    """Scores: 1 on the given rows, 0 elsewhere (scored at threshold 0.5)."""
    s = np.zeros(n)
    s[list(rows)] = 1.0
    return s


def score(*rows, windows=WIN, profile=STD, n=100):
    return nab.file_score(alerts(*rows, n=n), windows, profile, 0.5)


def test_profiles_and_probation():
    assert nab.PROFILES == {
        "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
        "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
        "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
    }
    assert nab.probation_rows(100) == 15  # floor(15.0)
    assert nab.probation_rows(4032) == 604  # floor(604.8)
    assert nab.probation_rows(22695) == 750  # floor(3404.25) capped at 0.15 * 5000
    assert nab.scaled_sigmoid(3.0) == pytest.approx(-math.tanh(7.5))  # x = 3 is not > 3
    assert nab.scaled_sigmoid(3.01) == -1.0
    assert nab.MAX_TP == pytest.approx(0.98661429815)


def test_detection_on_the_first_window_row_is_worth_tp():
    # pos = -(49 - 40 + 1)/10 = -1 -> tp * MAX_TP / MAX_TP = 1
    assert score(40) == pytest.approx(1.0, abs=1e-12)
    assert score(40, profile=nab.PROFILES["reward_low_FP_rate"]) == pytest.approx(1.0, abs=1e-12)


def test_detection_later_in_the_window_is_worth_less():
    # last row: pos = -(49 - 49 + 1)/10 = -0.1 -> tanh(0.25)/tanh(2.5) = 0.24492/0.98661 = 0.24824
    assert score(49) == pytest.approx(math.tanh(0.25) / math.tanh(2.5)) == pytest.approx(0.2482415)
    # middle: row 45, pos = -(49 - 45 + 1)/10 = -0.5 -> tanh(1.25)/tanh(2.5) = 0.84828/0.98661 = 0.85979
    assert score(45) == pytest.approx(0.8597926)
    # "about 0" on the last row of a wide window: W = 100 (rows 200..299 of 1000; P = 150),
    # pos = -0.01 -> tanh(0.025)/tanh(2.5) = 0.02500/0.98661 = 0.02533
    assert score(299, windows=[(200, 299)], n=1000) == pytest.approx(0.0253339)


def test_false_positive_before_any_window_costs_fp():
    # row 20 (>= P, no window passed yet): -fp = -0.11; window hit on its first row: +1
    assert score(20, 40) == pytest.approx(1.0 - 0.11)
    # and with the window missed: -0.11 - fn = -1.11
    assert score(20) == pytest.approx(-1.11)


def test_false_positive_after_a_window_depends_on_the_distance():
    # row 50: pos = |50 - 49|/(10 - 1) = 1/9 -> 0.11 * scaled_sigmoid(1/9) = -0.11 tanh(5/18)
    #         = -0.11 * 0.27085 = -0.029793 (almost nothing, next to -0.11)
    assert score(40, 50) - 1.0 == pytest.approx(-0.11 * math.tanh(5 / 18)) == pytest.approx(-0.0297932)
    # row 80: pos = 31/9 = 3.44 > 3 -> scaled_sigmoid = -1 -> the full -0.11
    assert score(40, 80) - 1.0 == pytest.approx(-0.11)
    # row 76: pos = 27/9 = 3 exactly (not > 3) -> -0.11 tanh(7.5) = -0.10999993
    assert score(40, 76) - 1.0 == pytest.approx(-0.11 * math.tanh(7.5), abs=1e-15)


def test_false_positive_uses_the_last_window_passed_not_the_nearest():
    # windows 30..39 and 60..69 (W = 10). Row 58 is 2 rows before the second window but 19 after the
    # first: pos = 19/9 = 2.111 -> -0.11 tanh(2.5 * 19/9) = -0.109994. Both windows hit on row 1: +2.
    total = score(30, 58, 60, windows=[(30, 39), (60, 69)])
    assert total - 2.0 == pytest.approx(-0.11 * math.tanh(2.5 * 19 / 9)) == pytest.approx(-0.1099943)


def test_missed_window_costs_fn():
    assert score() == -1.0  # no detection at all: the window is an FN, -fn
    assert score(profile=LOW_FN) == -2.0  # fn 2
    assert nab.file_score(np.zeros(100), [], STD, 0.5) == 0.0  # no windows, no detections


def test_window_of_width_one():
    # in the window: pos = -1/1 = -1 -> worth tp. After it, pos = d/(1 - 1) would divide by zero
    # (NAB crashes); we take the limit pos = inf -> the full -fp.
    values, window_of = nab.row_values(100, [(40, 40)], STD)
    assert values[40] == pytest.approx(1.0) and window_of[40] == 0 and window_of[41] == -1
    assert values[41] == values[99] == -0.11


def test_probationary_rows_are_ignored():
    # rows 0..14 (< P = 15) alert: not FPs, and the window is still missed: -1
    assert score(*range(15)) == -1.0
    # row 15 is the first scored row: an FP before any window, -0.11, plus the missed window
    assert score(15) == pytest.approx(-1.11)


def test_repeated_detections_in_a_window_count_once_and_fps_count_per_row():
    # all of 40..49 alert: only the best (earliest, row 40, worth 1) counts
    assert score(*range(40, 50)) == pytest.approx(1.0)
    assert score(*range(45, 50)) == pytest.approx(score(45))  # the earliest detected row wins
    # 10 consecutive alerting rows 20..29 before any window: 10 FPs = -1.1, plus the window hit: +1
    assert score(*range(20, 30), 40) == pytest.approx(1.0 - 10 * 0.11)


def test_windows_in_the_probationary_period():
    # window 5..10 lies wholly in rows < 15: it contributes nothing, hit or not
    assert score(windows=[(5, 10)]) == 0.0
    assert score(5, windows=[(5, 10)]) == 0.0
    # ... but it is still the last window passed for FP values: row 20, W = 6, pos = 10/5 = 2
    #     -> -0.11 tanh(5) = -0.109990
    assert score(20, windows=[(5, 10)]) == pytest.approx(-0.11 * math.tanh(5))
    # window 10..19 straddles P = 15: still a window (-fn if missed); a row < 15 cannot detect it
    assert score(windows=[(10, 19)]) == -1.0
    assert score(10, 12, windows=[(10, 19)]) == -1.0
    # row 15: pos = -(19 - 15 + 1)/10 = -0.5 -> 0.85979, as row 45 of the 40..49 window
    assert score(15, windows=[(10, 19)]) == pytest.approx(0.8597926)


def test_threshold_ties_go_to_the_highest_threshold():
    # row 40 scores 0.9, row 45 scores 0.6, the rest 0.
    #   theta 1.1: window missed                     -> -1
    #   theta 0.9: row 40 detected                   -> +1
    #   theta 0.6: rows 40, 45; only row 40 counts   -> +1 (tie with 0.9)
    #   theta 0.0: + 84 FP rows 15..39 and 50..99    -> < 1
    s = np.zeros(100)
    s[40], s[45] = 0.9, 0.6
    for opt in (nab.optimise, nab._optimise_brute):
        theta, total = opt([(s, WIN)], STD)
        assert theta == 0.9 and total == pytest.approx(1.0)
    # no windows, all scores 0: theta 1.1 (0) beats theta 0 (85 FPs)
    assert nab.optimise([(np.zeros(100), [])], STD) == (1.1, 0.0)


def random_corpus(rng):
    files = []
    for _ in range(rng.integers(1, 5)):
        n = int(rng.integers(8, 80))
        cuts = np.sort(rng.choice(n, size=2 * int(rng.integers(0, 4)), replace=False))
        windows = [(int(a), int(b)) for a, b in cuts.reshape(-1, 2)]  # may start in probation
        s = rng.random(n)
        if rng.random() < 0.5:
            s = np.round(s, 1)  # many equal scores, so many ties between rows and thresholds
        files.append((s, windows))
    return files


def test_sweep_equals_brute_force_on_random_corpora():
    rng = np.random.default_rng(20240610)
    for _ in range(120):
        corpus = random_corpus(rng)
        for profile in nab.PROFILES.values():
            theta, total = nab.optimise(corpus, profile)
            b_theta, b_total = nab._optimise_brute(corpus, profile)
            assert theta == b_theta
            assert total == pytest.approx(b_total, abs=1e-9)
            assert total == pytest.approx(sum(nab.file_score(s, w, profile, theta) for s, w in corpus))


def test_normalisation():
    # standard: 100 (S + 3)/(3 + 3); low FN: 100 (S + 6)/(3 + 6)
    assert nab.normalised(-3.0, 3, STD) == 0.0
    assert nab.normalised(3.0, 3, STD) == 100.0
    assert nab.normalised(0.0, 3, STD) == 50.0
    assert nab.normalised(0.0, 3, LOW_FN) == pytest.approx(100 * 6 / 9)


def write_corpus(root: Path, files: dict, labels: dict):
    for name, rows in files.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = np.datetime64("2014-04-01T00:00")
        lines = [f"{str(t0 + np.timedelta64(5 * i, 'm')).replace('T', ' ')}:00,{i % 7}.5" for i in range(rows)]
        path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))


def ts(i):
    """Row i's timestamp, in the labels' ".000000" spelling."""
    return str(np.datetime64("2014-04-01T00:00") + np.timedelta64(5 * i, "m")).replace("T", " ") + ":00.000000"


def test_load_corpus_and_null_and_perfect_detectors(tmp_path):
    write_corpus(
        tmp_path,
        {"catA/a.csv": 100, "catA/b.csv": 120, "catB/c.csv": 60},
        {
            "catA/a.csv": [[ts(40), ts(49)], [ts(70), ts(79)]],
            "catA/b.csv": [],
            "catB/c.csv": [[ts(30), ts(35)]],
            "catB/missing.csv": [[ts(1), ts(2)]],  # no data file: ignored
        },
    )
    corpus = nab.load_corpus(tmp_path)
    assert [(name, windows) for name, _, _, windows in corpus] == [
        ("catA/a.csv", [(40, 49), (70, 79)]),
        ("catA/b.csv", []),
        ("catB/c.csv", [(30, 35)]),
    ]
    name, timestamps, values, _ = corpus[0]
    assert timestamps[:2] == ["2014-04-01 00:00:00", "2014-04-01 00:05:00"] and values[:2].tolist() == [0.5, 1.5]

    # null detector, constant 0.5: detecting everything is far worse than nothing (file a alone:
    # 25 FP rows 15..39 at -0.11 each = -2.75 and more), so theta* = 1.1 and S = -fn * 3 -> 0
    null = nab.evaluate(tmp_path, lambda v, t: np.full(len(v), 0.5))
    for profile in nab.PROFILES:
        assert null[profile] == {"score": 0.0, "threshold": 1.1, "raw": -nab.PROFILES[profile]["fn"] * 3}

    # perfect detector: 1 on each window's first row, else 0 -> theta* = 1, S = 3 tp -> 100
    def perfect_for(files):  # evaluate scores the files in load_corpus order
        windows = iter([w for *_, w in files])

        def score_fn(values, timestamps):
            s = np.zeros(len(values))
            s[[lo for lo, _ in next(windows)]] = 1.0
            return s

        return score_fn

    for profile, r in nab.evaluate(tmp_path, perfect_for(corpus)).items():
        assert r["threshold"] == 1.0
        assert r["raw"] == pytest.approx(3.0, abs=1e-12) and r["score"] == pytest.approx(100.0)


@pytest.mark.skipif(not NAB_COPY.exists(), reason="no NAB copy at ../shared/data/nab beside the repository")
def test_real_nab_copy():
    corpus = nab.load_corpus(NAB_COPY)
    assert len(corpus) == 48
    assert sum(len(windows) for *_, windows in corpus) == 83
    for profile, r in nab.evaluate(NAB_COPY, lambda v, t: np.full(len(v), 0.5)).items():
        assert r["score"] == 0.0 and r["threshold"] == 1.1
    # sweep == brute force on the real windows, with a coarse random detector (11 candidates)
    rng = np.random.default_rng(1)
    scored = [(np.round(rng.random(len(v)) ** 8, 1), windows) for _, _, v, windows in corpus]
    theta, total = nab.optimise(scored, nab.PROFILES["standard"])
    b_theta, b_total = nab._optimise_brute(scored, nab.PROFILES["standard"])
    assert theta == b_theta and total == pytest.approx(b_total, abs=1e-9)
