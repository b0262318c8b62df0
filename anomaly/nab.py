"""An independent scorer for the Numenta Anomaly Benchmark (NAB v1.x).

Written from the NAB scoring spec (`nab-scoring-spec.md`, sections 1-5; it was checked to reproduce
NAB's published scores). The corpus is read from a NAB-layout folder given as an argument:
`data/<category>/<file>.csv` (columns timestamp,value) and `labels/combined_windows.json`.

A "window" here is a pair (L, R) of inclusive row indices. Scores are one anomaly score in [0, 1]
per row. A profile is a dict with the weights "tp", "fp" and "fn".
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

# Cost matrices of NAB's config/profiles.json (tnWeight is unused by the scorer).
PROFILES = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}

NO_DETECTION = 1.1  # the extra candidate threshold of section 4: above every score


def scaled_sigmoid(x):
    """Section 2: -1 if x > 3, else 2 / (1 + e^(5x)) - 1. Accepts a number or an array."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):  # e^(5x) for x = inf only; that branch is replaced by -1
        y = np.where(x > 3, -1.0, 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0)
    return float(y) if y.ndim == 0 else y


MAX_TP = scaled_sigmoid(-1.0)  # section 2: the value of a detection on a window's first row


def probation_rows(n: int) -> int:
    """Section 1: P = min(floor(0.15 n), 750). Rows i < P are not scored at all."""
    return min(math.floor(0.15 * n), 750)


def load_corpus(nab_dir):
    """Read a NAB-layout folder (section "Inputs").

    Returns a list of (name "category/file.csv", timestamps as str, values as a float array,
    windows as [(start_row, end_row)] inclusive), one per CSV under data/, sorted by name. Window
    ends are matched to rows by parsed timestamp (so "2014-04-10 07:15:00" equals
    "2014-04-10 07:15:00.000000"); where a timestamp occurs twice in a file (a few NAB files repeat
    an hour) the first row wins, as NAB's `timestamps.index` does. A file without labels has no
    windows; labels of files absent from data/ are ignored.
    """
    root = Path(nab_dir)
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    corpus = []
    for path in sorted((root / "data").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        df = pd.read_csv(path, dtype={"timestamp": str})
        timestamps = df["timestamp"].tolist()
        row_of = {}
        for i, t in enumerate(pd.to_datetime(df["timestamp"], format="ISO8601")):
            row_of.setdefault(t, i)
        windows = []
        for start, end in labels.get(name, []):
            try:
                windows.append((row_of[pd.Timestamp(start)], row_of[pd.Timestamp(end)]))
            except KeyError as e:
                raise ValueError(f"{name}: window [{start}, {end}] is not on the file's timestamps") from e
        corpus.append((name, timestamps, df["value"].to_numpy(dtype=float), sorted(windows)))
    return corpus


def row_values(n: int, windows, profile):
    """Section 2: the weighted value of a detection on each row, and each row's window (-1: none).

    Inside window (L, R) of width W: tp * scaled_sigmoid(-(R - i + 1) / W) / MAX_TP, so tp on the
    first row and about 0 on the last. Outside, before any window: -fp. Outside, after the last
    window passed (R, W): fp * scaled_sigmoid((i - R) / (W - 1)). Probation does not matter here.
    A window of width 1 would divide by 0 (NAB crashes); we take the limit, pos = inf: -fp.
    """
    tp, fp = profile["tp"], profile["fp"]
    values = np.full(n, -fp, dtype=float)
    window_of = np.full(n, -1, dtype=int)
    prev_end = -1
    for k, (lo, hi) in enumerate(windows):
        if not prev_end < lo <= hi < n:
            raise ValueError(f"windows must be sorted, disjoint and inside [0, {n}): {windows}")
        prev_end = hi
        width = hi - lo + 1
        rows = np.arange(lo, hi + 1)
        values[lo:hi + 1] = tp * scaled_sigmoid(-(hi - rows + 1) / width) / MAX_TP
        window_of[lo:hi + 1] = k
        after_end = windows[k + 1][0] if k + 1 < len(windows) else n
        after = np.arange(hi + 1, after_end)
        pos = (after - hi) / (width - 1) if width > 1 else np.full(len(after), np.inf)
        values[hi + 1:after_end] = fp * scaled_sigmoid(pos)
    return values, window_of


def file_score(scores, windows, profile, threshold) -> float:
    """Section 3: S_file(threshold) for one file.

    A row i >= P with score >= threshold is a detection. Each detection outside windows adds its
    row value; each window adds the value of its best (= earliest) detection, or -fn if it has none.

    Probation (section 1 + the note in section 3): rows i < P are dropped entirely, so they can never
    be detections and never raise a window's score; a window lying wholly in rows < P contributes
    nothing. A window only partly in probation is still scored: only its rows >= P can detect it,
    and it costs -fn if none does. We read it so because section 1 drops *rows*, not windows, and
    section 3 exempts only windows whose rows *all* fall in probation; it is also what NAB's
    scorer does (its non-probationary rows keep their window's name, and windows are counted from
    those rows).
    """
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    values, window_of = row_values(n, windows, profile)
    detected = scores >= threshold
    detected[:probation_rows(n)] = False
    total = float(values[detected & (window_of < 0)].sum())
    for lo, hi in windows:
        if hi < probation_rows(n):
            continue  # wholly probationary: no contribution
        hits = values[lo:hi + 1][detected[lo:hi + 1]]
        total += float(hits.max()) if len(hits) else -profile["fn"]
    return total


def optimise(corpus_scores, profile):
    """Section 4: the threshold that maximises the corpus score, by a sweep. Returns (theta*, S).

    corpus_scores: [(scores, windows)] per file. Candidates are every distinct score on a
    non-probationary row plus 1.1 (no detections); ties go to the highest threshold.

    Sweep: all non-probationary rows sorted by score, descending; lowering the threshold to a row's
    score detects it. A row outside windows then adds its value. A window starts at -fn and, once
    detected, is worth the running max of its detected rows' values; the row changes the total by
    the change of that running max (exactly 0 when it is not the window's new best). The total
    after the last row of each run of equal scores is S at that score.
    """
    fn = profile["fn"]
    s_parts, v_parts, w_parts = [], [], []
    n_windows = 0  # windows with at least one non-probationary row
    first_id = 0  # corpus-wide window ids: file's window k -> first_id + k
    for scores, windows in corpus_scores:
        scores = np.asarray(scores, dtype=float)
        p = probation_rows(len(scores))
        values, window_of = row_values(len(scores), windows, profile)
        s_parts.append(scores[p:])
        v_parts.append(values[p:])
        w_parts.append(np.where(window_of[p:] >= 0, window_of[p:] + first_id, -1))
        first_id += len(windows)
        n_windows += sum(1 for _, hi in windows if hi >= p)
    order = np.argsort(-np.concatenate(s_parts), kind="stable")
    s = np.concatenate(s_parts)[order]
    v = np.concatenate(v_parts)[order]
    w = np.concatenate(w_parts)[order]

    delta = np.where(w < 0, v, 0.0)
    in_window = np.flatnonzero(w >= 0)
    in_window = in_window[np.argsort(w[in_window], kind="stable")]  # by window, then by sweep order
    for rows in np.split(in_window, np.flatnonzero(np.diff(w[in_window])) + 1):
        if len(rows):
            best = np.maximum.accumulate(v[rows])
            delta[rows] = np.diff(best, prepend=-fn)

    totals = -fn * n_windows + np.cumsum(delta)
    run_ends = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if len(s) else np.array([], dtype=int)
    candidates = np.concatenate([[NO_DETECTION], s[run_ends]])
    sums = np.concatenate([[-fn * n_windows], totals[run_ends]])
    best = int(np.argmax(sums))  # first maximum = highest threshold
    return float(candidates[best]), float(sums[best])


def _optimise_brute(corpus_scores, profile):
    """Section 4 by brute force (for the tests): score every file at every candidate threshold."""
    candidates = {NO_DETECTION}
    for scores, _ in corpus_scores:
        candidates.update(float(x) for x in np.asarray(scores, dtype=float)[probation_rows(len(scores)):])
    best = None
    for theta in sorted(candidates, reverse=True):
        total = sum(file_score(scores, windows, profile, theta) for scores, windows in corpus_scores)
        if best is None or total > best[1]:
            best = (theta, total)
    return best


def normalised(total: float, n_windows: int, profile) -> float:
    """Section 5: 100 (S - S_null) / (S_perfect - S_null), S_perfect = tp * #windows,
    S_null = -fn * #windows (the constant detector's best threshold detects nothing)."""
    perfect, null = profile["tp"] * n_windows, -profile["fn"] * n_windows
    if perfect == null:
        raise ValueError("no windows to normalise against")
    return 100.0 * (total - null) / (perfect - null)


def evaluate(nab_dir, score_fn):
    """Score a detector on every file of a NAB-layout folder, for each profile (sections 1-5).

    score_fn(values: np.ndarray, timestamps: list[str]) -> one anomaly score in [0, 1] per row.
    Returns {profile: {"score": normalised score, "threshold": theta*, "raw": S at theta*}}, the
    threshold shared by all files and normalised over the windows of the files scored.
    """
    scored = []
    for name, timestamps, values, windows in load_corpus(nab_dir):
        scores = np.asarray(score_fn(values, timestamps), dtype=float)
        if scores.shape != values.shape or not np.all((scores >= 0) & (scores <= 1)):
            raise ValueError(f"{name}: need one score in [0, 1] per row")
        scored.append((scores, windows))
    n_windows = sum(len(windows) for _, windows in scored)
    result = {}
    for name, profile in PROFILES.items():
        theta, _ = optimise(scored, profile)
        raw = sum(file_score(scores, windows, profile, theta) for scores, windows in scored)
        result[name] = {"score": normalised(raw, n_windows, profile), "threshold": theta, "raw": raw}
    return result
