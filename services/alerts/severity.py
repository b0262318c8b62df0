"""How urgent a super-spike alert is: `critical` or `warning`.

Every alert is already a super-spike (the spike job saw a video's views grow past
spikes.super_growth times its share of the platform). What on-call needs to know on top is whether
it is big or broad enough to hurt the service or the feed right now:

    critical  when the interval's views are at least alerts.critical_share of the platform's
              views (large, at any platform size), OR they come from at least
              alerts.critical_regions regions (broad: the spike is spreading, not one region's
              local event)
    warning   otherwise.

A plain function of the transition's numbers, so a replay gives the same severity.
"""
from __future__ import annotations

CRITICAL = "critical"
WARNING = "warning"


def severity(share: float, regions: int, *, critical_share: float, critical_regions: int) -> str:
    return CRITICAL if share >= critical_share or regions >= critical_regions else WARNING
