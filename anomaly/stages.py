"""The building blocks of anomaly.detector: each is causal (it sees one new value at a time and
never looks ahead) and picklable (the Flink job keeps the detector in keyed state).

Cheap blocks (plain Python over a few hundred numbers) serve the per-video configuration; the
heavier ones (numpy FFTs, a periodically refitted Isolation Forest, a periodically refitted
Prophet model) are only built when their DetectorParams switch is on.
"""
from __future__ import annotations

import logging
import math
from bisect import bisect_left, insort
from collections import deque

import numpy as np

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution, in standard deviations


def _median_of_sorted(s):
    k = len(s)
    return s[k // 2] if k % 2 else 0.5 * (s[k // 2 - 1] + s[k // 2])


class RollingQuantiles:
    """Median and MAD of the last n values (sorted list; O(n) memmove per step, fine at n ~ 1e3)."""

    def __init__(self, n: int):
        self.n, self.buf, self.sorted = n, deque(), []

    def __len__(self):
        return len(self.buf)

    def push(self, x: float) -> None:
        self.buf.append(x)
        insort(self.sorted, x)
        if len(self.buf) > self.n:
            old = self.buf.popleft()
            del self.sorted[bisect_left(self.sorted, old)]

    def median(self) -> float:
        return _median_of_sorted(self.sorted)

    def mad(self, med: float) -> float:
        return _median_of_sorted(sorted(abs(v - med) for v in self.sorted))


class RobustBaseline:
    """Median and robust scale (1.4826 MAD, at least `floor`) of a trailing window.

    The MAD is recomputed every 16 rows only: it moves slowly and costs O(n log n).
    """

    def __init__(self, window: int, floor: float):
        self.values, self.floor = RollingQuantiles(window), floor
        self.rows, self._mad, self._mad_at = 0, 1.0, None

    def __len__(self):
        return len(self.values)

    def push(self, x: float) -> None:
        self.values.push(x)
        self.rows += 1

    def center_and_scale(self) -> tuple[float, float]:
        med = self.values.median()
        if self._mad_at is None or self.rows - self._mad_at >= 16:
            self._mad, self._mad_at = self.values.mad(med), self.rows
        # the tiny relative term keeps a flat series (MAD 0) from dividing by 0
        return med, max(MAD_TO_SIGMA * self._mad, self.floor) + 1e-9 * (abs(med) + 1.0)


class Likelihood:
    """Numenta-style anomaly likelihood of one surprise signal, as a tail probability.

    The mean of the last `short` surprises is compared against a normal fit of the same mean over
    the last `long` rows; `tail` returns the fit's upper tail probability (small = unusual). The
    short mean lets a run of moderately surprising rows add up; comparing each series against its
    own history puts series of very different noise on one scale, so that one threshold serves
    every series.
    """

    def __init__(self, long: int, short: int = 1):
        self.hist, self.sum, self.sumsq = deque(maxlen=long), 0.0, 0.0
        self.recent = deque(maxlen=short) if short > 1 else None

    def tail(self, surprise: float) -> float:
        if self.recent is not None:
            self.recent.append(surprise)
            surprise = sum(self.recent) / len(self.recent)
        n = len(self.hist)
        if n >= 2:
            mean = self.sum / n
            std = math.sqrt(max(self.sumsq / n - mean * mean, 1e-12))
            q = 0.5 * math.erfc((surprise - mean) / (std * math.sqrt(2.0)))
        else:
            q = 0.5
        if n == self.hist.maxlen:
            old = self.hist[0]
            self.sum -= old
            self.sumsq -= old * old
        self.hist.append(surprise)
        self.sum += surprise
        self.sumsq += surprise * surprise
        return q


class ExpTailLikelihood:
    """Anomaly likelihood with a heavy (peaks-over-threshold) tail instead of a normal fit.

    Among the last `long` surprises, those above their `quantile` u (5 % by default) are modelled
    by an exponential tail, the generalised Pareto distribution with shape 0 (extreme-value
    theory: excesses over a high threshold), whose scale is the mean excess over u:
    tail(s) = P(S > u) * exp(-(s - u) / mean_excess) above u, and the empirical tail below it.
    On a log-compressed surprise such as log1p(robust z) that is a power-law tail in z itself,
    where a normal fit of log1p(z) falls like exp(-c log(z)^2), ever faster. Before `warmup`
    surprises it returns 0.5 (no opinion), as Likelihood does before two. Cost: the sorted window
    (insort / delete, as RollingQuantiles) plus a sum over the top 5 % per row.
    """

    def __init__(self, long: int, short: int = 1, quantile: float = 0.95, warmup: int = 100):
        self.values = RollingQuantiles(long)
        self.recent = deque(maxlen=short) if short > 1 else None
        self.quantile, self.warmup = quantile, warmup

    def tail(self, surprise: float) -> float:
        if self.recent is not None:
            self.recent.append(surprise)
            surprise = sum(self.recent) / len(self.recent)
        s, m = self.values.sorted, len(self.values)
        q = 0.5
        if m >= self.warmup:
            k = int(self.quantile * m)
            u, top = s[k], s[k + 1:]
            share = len(top) / m
            if surprise <= u:
                q = max(1.0 - bisect_left(s, surprise) / m, share)
            else:
                excess = max(sum(top) / len(top) - u, 1e-9) if top else 1e-9
                q = share * math.exp(-(surprise - u) / excess)
        self.values.push(surprise)
        return q


def combined_tail(tails, how: str) -> float:
    """One tail probability from several: "min" (the most surprising stage decides) or "fisher"
    (Fisher's method: -2 sum log q is chi-square with 2k degrees of freedom when the stages are
    independent, so evidence from several stages adds up)."""
    if not tails:
        return 1.0
    if how == "min" or len(tails) == 1:
        return min(tails)
    half_x = -sum(math.log(max(q, 1e-300)) for q in tails)
    term, total = 1.0, 1.0
    for j in range(1, len(tails)):
        term *= half_x / j
        total += term
    return min(1.0, math.exp(-half_x) * total)


class Shapes:
    """Ring buffer of recent shapes; novelty = mean distance to the k nearest, per row of shape."""

    def __init__(self, length: int, history: int, k: int):
        self.length, self.k = length, k
        self.vecs = np.zeros((history, length))
        self.count = self.pos = 0

    def novelty(self, shape: np.ndarray) -> float:
        nov = 0.0
        if self.count >= 20:
            d = np.sqrt(((self.vecs[:self.count] - shape) ** 2).sum(axis=1))
            k = min(self.k, self.count)
            nov = float(np.partition(d, k - 1)[:k].mean()) / math.sqrt(self.length)
        self.vecs[self.pos] = shape
        self.pos = (self.pos + 1) % len(self.vecs)
        self.count = min(self.count + 1, len(self.vecs))
        return nov


class RangeWatch:
    """Flags a value beyond everything seen so far by more than `tolerance` of the seen range.

    HTM's NAB detector calls this a "spatial anomaly": a new extreme is an anomaly whatever the
    models of the other stages think, and it needs two numbers of state.
    """

    def __init__(self, tolerance: float):
        self.tolerance, self.lo, self.hi = tolerance, math.inf, -math.inf
        self.excess = 0.0  # of the newest value: how far beyond the seen range, as a share of it

    def update(self, x: float) -> bool:
        margin = self.tolerance * (self.hi - self.lo)
        outside = self.hi > self.lo and (x > self.hi + margin or x < self.lo - margin)
        self.excess = (max(x - self.hi, self.lo - x) / (self.hi - self.lo)) if outside else 0.0
        self.lo, self.hi = min(self.lo, x), max(self.hi, x)
        return outside


class SeasonalBaseline:
    """The value expected from the same phase of earlier seasons, for a period found in the data.

    Every `refresh` rows the period is re-estimated as the lag (>= min_lag) of the highest
    autocorrelation peak of the trailing buffer, kept only if that autocorrelation is at least
    `min_acf`; no timestamps are needed (NAB's files come at 5 min, 30 min and 1 h intervals, and
    the eval feeds values only). The expectation is the median of the values one, two, ...
    `seasons` periods back and their neighbours (one row either side: phases jitter).
    """

    def __init__(self, buffer: int, refresh: int, min_lag: int, seasons: int, min_acf: float):
        self.values = deque(maxlen=buffer)
        self.refresh, self.min_lag, self.seasons, self.min_acf = refresh, min_lag, seasons, min_acf
        self.period, self.rows = 0, 0

    def expected(self) -> float | None:
        p, n = self.period, len(self.values)
        if not p:
            return None
        past = [self.values[n - k * p + d] for k in range(1, self.seasons + 1) for d in (-1, 0, 1)
                if 0 <= n - k * p + d < n]
        return _median_of_sorted(sorted(past)) if past else None

    def push(self, x: float) -> None:
        self.values.append(x)
        self.rows += 1
        if self.rows % self.refresh == 0 and len(self.values) >= 3 * self.min_lag:
            self.period = self._detect_period()

    def _detect_period(self) -> int:
        a = np.asarray(self.values, dtype=float)
        a = a - a.mean()
        n = len(a)
        spectrum = np.fft.rfft(a, 2 * n)
        acf = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
        if acf[0] <= 0:
            return 0
        acf = acf / acf[0]
        lags = np.arange(self.min_lag, n // 2)
        if len(lags) < 3:
            return 0
        inner = lags[1:-1]
        peaks = inner[(acf[inner] >= acf[inner - 1]) & (acf[inner] >= acf[inner + 1])]
        if not len(peaks):
            return 0
        best = int(peaks[np.argmax(acf[peaks])])
        return best if acf[best] >= self.min_acf else 0


class SpectralResidual:
    """Spectral residual saliency (Ren et al., KDD 2019) of the newest value.

    The trailing `window` values, extended by a few points extrapolated from the values before the
    newest (so that the newest value is not at the edge of the window), are moved to the frequency
    domain; the log amplitude minus its local mean (the "spectral residual") back in the time
    domain is a saliency map in which the unexpected parts of the window stand out. The surprise is the newest point's saliency relative to the
    mean saliency of the points just before it.
    """

    EXTEND, AMP_AVERAGE, LOCAL = 5, 3, 21

    def __init__(self, window: int):
        self.values = deque(maxlen=window)

    def surprise(self, x: float) -> float:
        self.values.append(x)
        n = len(self.values)
        if n < self.values.maxlen:
            return 0.0
        a = np.fromiter(self.values, float, n)
        extended = np.concatenate([a, np.full(self.EXTEND, self._predict_next(a[-self.EXTEND - 2:-1]))])
        spectrum = np.fft.fft(extended)
        amp = np.abs(spectrum) + 1e-12
        log_amp = np.log(amp)
        local = np.convolve(log_amp, np.ones(self.AMP_AVERAGE) / self.AMP_AVERAGE, mode="same")
        saliency = np.abs(np.fft.ifft(spectrum / amp * np.exp(log_amp - local)))
        before = saliency[n - 1 - self.LOCAL:n - 1].mean() + 1e-12
        return max(float(saliency[n - 1] / before) - 1.0, 0.0)

    @staticmethod
    def _predict_next(v: np.ndarray) -> float:
        """The SR paper's extrapolation from the points before the newest (so that a spike in the
        newest point is not carried into the extension): v[1] plus the summed slopes to v[-1]."""
        steps = np.arange(len(v) - 1, 0, -1)
        return float(v[1] + np.sum((v[-1] - v[:-1]) / steps))


def _average_path(n):
    """Expected path length of an unsuccessful search in a binary tree of n points (iForest's c(n))."""
    n = np.asarray(n, dtype=float)
    harmonic = np.log(np.maximum(n - 1.0, 1.0)) + 0.5772156649
    c = 2.0 * harmonic - 2.0 * (n - 1.0) / np.maximum(n, 1.0)
    return np.where(n > 2, c, np.where(n == 2, 1.0, 0.0))


class FlatForest:
    """A fitted scikit-learn IsolationForest as flat numpy arrays, to score one row in ~0.1 ms.

    sklearn's score_samples costs milliseconds per call (a Python loop over trees); walking all
    trees at once here costs one numpy step per level. Scores equal sklearn's -score_samples.
    """

    def __init__(self, forest):
        feats, thr, left, right, leaf_depth_bonus, roots = [], [], [], [], [], []
        offset = 0
        for tree, features in zip(forest.estimators_, forest.estimators_features_):
            t = tree.tree_
            is_leaf = t.children_left < 0
            feats.append(np.where(is_leaf, 0, np.asarray(features)[np.maximum(t.feature, 0)]))
            thr.append(t.threshold)
            left.append(np.where(is_leaf, np.arange(t.node_count), t.children_left) + offset)
            right.append(np.where(is_leaf, np.arange(t.node_count), t.children_right) + offset)
            leaf_depth_bonus.append(np.where(is_leaf, _average_path(t.n_node_samples), 0.0))
            roots.append(offset)
            offset += t.node_count
        self.feature, self.threshold = np.concatenate(feats), np.concatenate(thr)
        self.left, self.right = np.concatenate(left), np.concatenate(right)
        self.leaf_bonus = np.concatenate(leaf_depth_bonus)
        self.is_leaf = self.left == np.arange(offset)
        self.roots = np.asarray(roots)
        self.norm = float(_average_path(forest.max_samples_))

    def score(self, row: np.ndarray) -> float:
        node, depth = self.roots.copy(), np.zeros(len(self.roots))
        active = ~self.is_leaf[node]
        while active.any():
            go_left = row[self.feature[node]] <= self.threshold[node]
            node = np.where(active, np.where(go_left, self.left[node], self.right[node]), node)
            depth += active
            active = ~self.is_leaf[node]
        path = depth + self.leaf_bonus[node]
        return float(2.0 ** (-path.mean() / self.norm))


class ForestStage:
    """Isolation Forest over derived features, refitted every `refit` rows on the trailing
    `history` feature rows (scikit-learn; fitted periodically, never per row). Before the first
    fit the surprise is 0."""

    def __init__(self, history: int, refit: int, trees: int):
        self.rows = deque(maxlen=history)
        self.refit, self.trees, self.count, self.forest = refit, trees, 0, None

    def surprise(self, features: list[float]) -> float:
        row = np.asarray(features, dtype=float)
        score = self.forest.score(row) if self.forest is not None else 0.0
        self.rows.append(row)
        self.count += 1
        if self.count % self.refit == 0 and len(self.rows) >= 128:
            self.forest = self._fit()
        return score

    def _fit(self) -> FlatForest:
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(n_estimators=self.trees, max_samples=min(256, len(self.rows)),
                                 random_state=0).fit(np.asarray(self.rows))
        return FlatForest(forest)


class ProphetBaseline:
    """Prophet's forecast as an expected value, refitted every `refit` rows on the trailing
    `history` values; each fit forecasts the next `refit` rows, which are then read one by one.

    Rows are placed one day apart in Prophet's clock, and the one seasonality is the period found
    by `SeasonalBaseline` (in rows), so no timestamps are needed. Fitting costs ~0.1-1 s, so it
    runs every few hundred rows, never per event.
    """

    def __init__(self, history: int, refit: int):
        self.values = deque(maxlen=history)
        self.refit, self.count = refit, 0
        self.forecast, self.next = None, 0

    def expected(self) -> float | None:
        if self.forecast is None or self.next >= len(self.forecast):
            return None
        return float(self.forecast[self.next])

    def push(self, x: float, period: int) -> None:
        self.values.append(x)
        self.count += 1
        self.next += 1
        if self.count % self.refit == 0 and len(self.values) >= 2 * max(period, 50):
            self.forecast, self.next = self._fit(period), 0

    def _fit(self, period: int) -> np.ndarray:
        import pandas as pd
        from prophet import Prophet

        logging.getLogger("cmdstanpy").disabled = True  # one INFO line per fit otherwise
        n = len(self.values)
        days = pd.to_datetime(np.arange(self.count - n, self.count + self.refit), unit="D")
        model = Prophet(daily_seasonality=False, weekly_seasonality=False, yearly_seasonality=False,
                        uncertainty_samples=0)
        if period:
            model.add_seasonality(name="detected", period=period, fourier_order=min(10, period // 2))
        model.fit(pd.DataFrame({"ds": days[:n], "y": np.asarray(self.values, float)}))
        return model.predict(pd.DataFrame({"ds": days[n:]}))["yhat"].to_numpy()
