"""Leave-one-category-out cross-validation of the detector on a NAB-layout folder.

    python -m anomaly.cross_validation --nab ../shared/data/nab [--json out.json]

For each category (`data/<category>/`) and profile: among CANDIDATES, the parameter set and the
threshold that score best on the other categories are chosen, and the left-out category is scored
with them; nothing of a category is seen before it is scored. The held-out raw scores of all
categories, summed and normalised over the whole corpus, give the cross-validated score, printed
beside the in-sample one (`DetectorParams.nab_tuned()` at the threshold optimised on every file,
what `fyp anomaly eval` prints).

The candidates are nab_tuned() and its ablation variants (anomaly/RESULTS.md). That list was drawn
up while looking at the whole corpus, so the figure is a held-out score of the choice of
parameters and threshold, not of the detector's design.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from anomaly import nab
from anomaly.detector import DetectorParams, score_series

CANDIDATES = {
    "nab_tuned": {},
    "refractory=150": {"refractory": 150},
    "refractory=250": {"refractory": 250},
    "bypass_tolerance=none": {"bypass_tolerance": None},
    "deviation_tail=normal": {"deviation_tail": "normal"},
    "season_buffer=0": {"season_buffer": 0},
    "knn_length=0": {"knn_length": 0},
}


def category(name: str) -> str:
    return name.split("/", 1)[0]


def cross_validate(scored: dict, profile: dict) -> dict:
    """scored: {candidate: [(file name, scores, windows)]}, the same files in every candidate.
    Returns {"score": normalised held-out score, "folds": {category: (candidate, threshold, held-out raw)}}."""
    first = next(iter(scored.values()))
    categories = sorted({category(name) for name, _, _ in first})
    folds, total = {}, 0.0
    for held_out in categories:
        best = None
        for cand, files in scored.items():
            rest = [(s, w) for name, s, w in files if category(name) != held_out]
            theta, raw = nab.optimise(rest, profile)
            if best is None or raw > best[2]:
                best = (cand, theta, raw)
        cand, theta, _ = best
        raw = sum(nab.file_score(s, w, profile, theta) for name, s, w in scored[cand] if category(name) == held_out)
        folds[held_out] = (cand, theta, raw)
        total += raw
    n_windows = sum(len(w) for _, _, w in first)
    return {"score": round(nab.normalised(total, n_windows, profile), 2), "folds": folds}


def in_sample(files, profile) -> float:
    theta, raw = nab.optimise([(s, w) for _, s, w in files], profile)
    return round(nab.normalised(raw, sum(len(w) for _, _, w in files), profile), 2)


def run(nab_dir) -> dict:
    corpus = nab.load_corpus(nab_dir)
    started = time.perf_counter()
    scored = {}
    for cand, overrides in CANDIDATES.items():
        params = dataclasses.replace(DetectorParams.nab_tuned(), **overrides)
        scored[cand] = [(name, np.asarray(score_series(values, params)), windows)
                        for name, _ts, values, windows in corpus]
    out = {"seconds": round(time.perf_counter() - started, 1), "profiles": {}}
    for pname, profile in nab.PROFILES.items():
        cv = cross_validate(scored, profile)
        out["profiles"][pname] = {"in_sample": in_sample(scored["nab_tuned"], profile),
                                  "leave_one_category_out": cv["score"],
                                  "folds": {c: {"candidate": f[0], "threshold": f[1], "held_out_raw": round(f[2], 3)}
                                            for c, f in cv["folds"].items()}}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab", required=True)
    ap.add_argument("--json", help="write the result (with the per-category folds) to this file")
    args = ap.parse_args(argv)
    result = run(args.nab)
    for pname, r in result["profiles"].items():
        print(f"{pname:<20} in-sample {r['in_sample']:6.2f}   leave-one-category-out {r['leave_one_category_out']:6.2f}")
    for c, f in result["profiles"]["standard"]["folds"].items():
        print(f"  standard, {c:<22} tuned on the rest: {f['candidate']:<22} threshold {f['threshold']:.6f}")
    print(f"scored {len(CANDIDATES)} parameter sets in {result['seconds']} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
