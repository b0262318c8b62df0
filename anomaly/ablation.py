"""Ablation and held-out checks of the spike detector on a NAB-layout folder.

    python -m anomaly.ablation --nab ../shared/data/nab [--set field=value ...] [--json out.json]

scores the detector with DetectorParams.nab_tuned() plus the overrides on every file once and prints the
three NAB profiles on all files and on the two fixed halves of the corpus (files sorted by name;
half A = even positions, half B = odd positions), each half normalised over its own windows. The
scoring is that of `fyp anomaly eval` (anomaly.nab), and the detector is fed values only, as that
command feeds it, so the "all" row equals what `fyp anomaly eval` prints for the same parameters.
Rows "B@A" and "A@B" score one half at the threshold optimised on the other.

Held-out check: `heldout(results)` picks, among several parameter sets, the best on one half and
reports its score on the other half (and vice versa).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from anomaly import nab
from anomaly.detector import DetectorParams, score_series


def split(corpus):
    """The fixed split: sorted names, even positions -> "A", odd -> "B"."""
    names = sorted(name for name, *_ in corpus)
    return {name: "AB"[i % 2] for i, name in enumerate(names)}


def scores_by_subset(scored, half_of):
    """{subset: {profile: normalised score}} for subsets "all", "A", "B" (each with the threshold
    NAB optimises on that subset) and "B@A", "A@B" (half B scored at the threshold optimised on
    half A, and vice versa: nothing of the scored half is used)."""
    def score(subset, profile, theta=None):
        chosen = [(s, w) for name, s, w in scored if subset == "all" or half_of[name] == subset]
        if theta is None:
            theta, _ = nab.optimise(chosen, profile)
        raw = sum(nab.file_score(s, w, profile, theta) for s, w in chosen)
        return round(nab.normalised(raw, sum(len(w) for _, w in chosen), profile), 2), theta

    out = {subset: {} for subset in ("all", "A", "B", "B@A", "A@B")}
    for name, profile in nab.PROFILES.items():
        out["all"][name], _ = score("all", profile)
        out["A"][name], theta_a = score("A", profile)
        out["B"][name], theta_b = score("B", profile)
        out["B@A"][name], _ = score("B", profile, theta_a)
        out["A@B"][name], _ = score("A", profile, theta_b)
    return out


def run(nab_dir, params: DetectorParams):
    corpus = nab.load_corpus(nab_dir)
    start = time.perf_counter()
    scored = [(name, np.asarray(score_series(values, params)), windows)
              for name, _ts, values, windows in corpus]
    seconds = time.perf_counter() - start
    return {"params": dataclasses.asdict(params), "seconds": round(seconds, 1),
            "scores": scores_by_subset(scored, split(corpus))}


def heldout(results, profile="standard"):
    """Pick the best parameter set on half A, report it on half B, and vice versa."""
    out = {}
    for tune, test in (("A", "B"), ("B", "A")):
        best = max(results, key=lambda r: r["scores"][tune][profile])
        out[f"tune {tune} -> test {test}"] = {"params": best["params"],
                                               "tuned": best["scores"][tune][profile],
                                               "held_out": best["scores"][test][profile]}
    return out


def _parse_override(text):
    """"field=value" -> (field, value typed like the field's default); "none" means None."""
    key, value = text.split("=", 1)
    default = getattr(DetectorParams.nab_tuned(), key)
    if value.lower() == "none":
        return key, None
    if isinstance(default, bool):
        return key, value.lower() in ("1", "true", "yes")
    if default is None or isinstance(default, float):
        return key, float(value)
    return key, type(default)(value)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab", required=True)
    ap.add_argument("--set", action="append", default=[], help="field=value override of DetectorParams")
    ap.add_argument("--json", help="append the result as one JSON line to this file")
    args = ap.parse_args(argv)
    params = dataclasses.replace(DetectorParams.nab_tuned(), **dict(_parse_override(s) for s in args.set))
    result = run(args.nab, params)
    result["overrides"] = args.set
    for subset, by_profile in result["scores"].items():
        print(f"{subset:<4} " + "  ".join(f"{p} {v:6.2f}" for p, v in by_profile.items()))
    print(f"scored in {result['seconds']} s; overrides: {' '.join(args.set) or '(defaults)'}")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
