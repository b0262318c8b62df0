"""How urgent a super-spike alert is: `critical` or `warning`.

Every alert is already a super-spike (the spike job saw an anomalous rise, then a rate of at least
spikes.super_rate at spikes.super_growth times the video's baseline). What on-call needs to know on
top is whether it is big or broad enough to hurt the service or the feed right now:

    critical  when the detector still finds the interval anomalous (score >= critical_score; the
              alerter passes spikes.rise_score, the score a spike starts from) AND
                  the interval's views reach alerts.critical_rate (large), OR
                  views come from at least alerts.critical_regions regions (broad: the spike is
                  spreading, not one region's local event)
    warning   otherwise.

A plain function of the transition's numbers, so a replay gives the same severity.
"""
from __future__ import annotations

CRITICAL = "critical"
WARNING = "warning"


def severity(score: float, views: int, regions: int, *, critical_rate: float, critical_regions: int,
             critical_score: float = 0.0) -> str:
    large = views >= critical_rate
    broad = regions >= critical_regions
    return CRITICAL if score >= critical_score and (large or broad) else WARNING
