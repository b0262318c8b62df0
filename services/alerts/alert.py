"""The alert event: what goes on the spike-alerts topic (key = the alert id), built from one spike
transition of the Flink spike job.

A transition (topics.spike_transitions, key = video id, at least once) is
    {"video_id", "state", "previous_state", "at", "spike_started_at", "score", "views",
     "baseline_rate", "growth", "regions", "platform_views", "share", "interval_ms", "series_start",
     "series"}
with `series` the video's views per interval, oldest first, the last one the interval ending at
`at` (so interval i covers [series_start + i*interval_ms, series_start + (i+1)*interval_ms)), and
`spike_started_at` the start of the first rising interval (operators/spikes.py).

Only a transition INTO super_spike alerts. Its id, `<video>:<spike_started_at>`, is the same on
every re-emission and replay of that spike, which is what deduplication keys on.
"""
from __future__ import annotations

import re
import zlib

SUPER_SPIKE = "super_spike"
ALERT_TYPE = "video_super_spike"

# The transition fields the alert carries over unchanged.
TRANSITION_FIELDS = ("video_id", "previous_state", "at", "spike_started_at", "score", "views", "baseline_rate",
                     "growth", "regions", "platform_views", "share", "interval_ms", "series_start", "series")


def enters_super_spike(transition: dict) -> bool:
    return transition.get("state") == SUPER_SPIKE and transition.get("previous_state") != SUPER_SPIKE


def alert_id(transition: dict) -> str:
    return f"{transition['video_id']}:{int(transition['spike_started_at'])}"


def build_alert(transition: dict, severity: str, runbook_url: str, plot_path: str) -> dict:
    """The event on spike-alerts. Deterministic for a given transition and config."""
    alert = {"id": alert_id(transition), "type": ALERT_TYPE, "severity": severity, "state": SUPER_SPIKE}
    for k in TRANSITION_FIELDS:
        alert[k] = transition.get(k)
    alert["series"] = list(transition.get("series") or [])
    alert["runbook_url"] = runbook_url
    alert["plot_path"] = plot_path
    return alert


def safe_file_stem(alert_id_: str) -> str:
    """A file name for an alert id: its readable characters, plus a checksum of the whole id so two
    ids that differ only in replaced characters never share a file."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", alert_id_)[:100]
    return f"{readable}-{zlib.crc32(alert_id_.encode()):08x}"
