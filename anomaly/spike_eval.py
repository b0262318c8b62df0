"""How well spike alerts match labelled super-spikes (the generator's labels): alert delay in
event time and false alerts per hour of traffic.

An alert is a transition into super_spike. It matches a label when it is for the label's video
and falls inside [onset, end + grace]; the first matching alert counts, later ones for the same
label are repeats (the alerter's cooldown drops them). Any other alert is false.
"""
from __future__ import annotations

import numpy as np

SUPER_SPIKE = "super_spike"


def alert_quality(transitions: list[dict], labels: list[dict], traffic_hours: float,
                  grace_ms: int = 3_600_000) -> dict:
    alerts = sorted((t for t in transitions if t["state"] == SUPER_SPIKE), key=lambda t: t["at"])
    first: dict[int, int] = {}
    false = 0
    for a in alerts:
        hit = next((i for i, lab in enumerate(labels) if lab["video_id"] == a["video_id"]
                    and lab["onset_ms"] <= a["at"] <= lab["end_ms"] + grace_ms), None)
        if hit is None:
            false += 1
        elif hit not in first:
            first[hit] = a["at"]
    delays = [(first[i] - labels[i]["onset_ms"]) / 60_000 for i in sorted(first)]
    return {
        "labelled_spikes": len(labels),
        "detected": len(first),
        "missed": [labels[i]["video_id"] for i in range(len(labels)) if i not in first],
        "delay_min_median": float(np.median(delays)) if delays else None,
        "delay_min_p95": float(np.percentile(delays, 95)) if delays else None,
        "delay_min_max": float(max(delays)) if delays else None,
        "false_alerts": false,
        "false_alerts_per_hour": false / traffic_hours if traffic_hours else None,
        "traffic_hours": traffic_hours,
    }
