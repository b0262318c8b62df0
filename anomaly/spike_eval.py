"""How well spike alerts match labelled super-spikes (the generators' labels): recall, alert delay
in event time and false alerts per hour and per day of traffic.

An alert is a transition into super_spike; with `cooldown_ms`, one for a video within the cooldown
of its previous counted alert is dropped, as the alerter does (what on-call would see). It matches
a label when it is for the label's video and falls inside [onset, end + grace]; the first matching
alert counts, later ones for the same label are repeats. Any other alert is false. Delays are
given from the label's onset and, where a label has one, from its `ref_ms` (the start of the
first interval in which the video's views exceeded ten times its baseline), to the end of the
interval the alert was raised in.

Labels of one video whose spans overlap (a second surge that starts before the first has ended)
are one episode, scored as one label from the first onset to the last end: the video never left
its spike in between, so no second alert can be raised for it, and on-call would see one page.
"""
from __future__ import annotations

import numpy as np

SUPER_SPIKE = "super_spike"


def _stats(values: list[float], prefix: str) -> dict:
    return {f"{prefix}_median": float(np.median(values)) if values else None,
            f"{prefix}_p95": float(np.percentile(values, 95)) if values else None,
            f"{prefix}_max": float(max(values)) if values else None}


def episodes(labels: list[dict]) -> list[dict]:
    """The labels with those of one video whose [onset, end] spans overlap merged into one (the
    first onset and `ref_ms`, the last end), in order of video and onset."""
    merged: list[dict] = []
    for lab in sorted(labels, key=lambda lab: (lab["video_id"], lab["onset_ms"])):
        last = merged[-1] if merged else None
        if last is not None and last["video_id"] == lab["video_id"] and lab["onset_ms"] <= last["end_ms"]:
            last["end_ms"] = max(last["end_ms"], lab["end_ms"])
            last["ref_ms"] = last.get("ref_ms") or lab.get("ref_ms")
            continue
        merged.append(dict(lab))
    return merged


def alert_quality(transitions: list[dict], labels: list[dict], traffic_hours: float,
                  grace_ms: int = 3_600_000, cooldown_ms: int = 0) -> dict:
    given = len(labels)
    labels = episodes(labels)
    alerts = sorted((t for t in transitions if t["state"] == SUPER_SPIKE), key=lambda t: t["at"])
    first: dict[int, int] = {}
    last_alert: dict[str, int] = {}
    false = 0
    for a in alerts:
        previous = last_alert.get(a["video_id"])
        if cooldown_ms and previous is not None and a["at"] - previous < cooldown_ms:
            continue
        last_alert[a["video_id"]] = a["at"]
        hit = next((i for i, lab in enumerate(labels) if lab["video_id"] == a["video_id"]
                    and lab["onset_ms"] <= a["at"] <= lab["end_ms"] + grace_ms), None)
        if hit is None:
            false += 1
        elif hit not in first:
            first[hit] = a["at"]
    delays = [(first[i] - labels[i]["onset_ms"]) / 60_000 for i in sorted(first)]
    from_ref = [(first[i] - labels[i]["ref_ms"]) / 60_000 for i in sorted(first) if labels[i].get("ref_ms")]
    return {
        "labelled_spikes": len(labels),
        "overlapping_labels_merged": given - len(labels),
        "detected": len(first),
        "recall": len(first) / len(labels) if labels else None,
        "missed": [labels[i]["video_id"] for i in range(len(labels)) if i not in first],
        **_stats(delays, "delay_min"),
        **(_stats(from_ref, "delay_from_10x_min") if from_ref else {}),
        "false_alerts": false,
        "false_alerts_per_hour": false / traffic_hours if traffic_hours else None,
        "false_alerts_per_day": false / traffic_hours * 24 if traffic_hours else None,
        "traffic_hours": traffic_hours,
    }
