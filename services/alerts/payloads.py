"""What a webhook receives for an alert, per the webhook's `format`.

- plain:        our own JSON: every field of the alert event, the runbook link, a one-line summary
                and the plot as base64 PNG (`plot_png_base64`).
- slack:        a Slack incoming-webhook message: `text` (the fallback shown in notifications) and
                `blocks` with the key numbers and a runbook button. Slack cannot show an inline
                image from bytes, so the plot is not attached there.
- alertmanager: the body of Alertmanager v2 `POST /api/v2/alerts`: a JSON list with one alert
                {labels, annotations, startsAt, generatorURL}. Alertmanager groups and deduplicates
                on the labels, so they identify the spike: alertname, video_id, severity, spike_id.

Plain functions over the alert dict (alert.py), so each shape is unit-tested without a network.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import orjson

from services.alerts.plot import alert_png

ALERTNAME = "VideoSuperSpike"
FORMATS = ("plain", "slack", "alertmanager")


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def per_interval(interval_ms: int) -> str:
    return f"{interval_ms // 60_000}m" if interval_ms and interval_ms % 60_000 == 0 else f"{(interval_ms or 0) / 1000:g}s"


def share_text(alert: dict) -> str:
    """The video's share of the platform's views in the alert's interval, as a percentage."""
    share = alert.get("share")
    return "?" if share is None else f"{100 * float(share):.2g} %"


def summary(alert: dict) -> str:
    return (f"[{alert['severity'].upper()}] video {alert['video_id']} super-spike: {alert['views']:,} views/"
            f"{per_interval(alert['interval_ms'])} ({alert['growth']:.1f}x baseline, {share_text(alert)} of the platform) "
            f"from {alert['regions']} regions")


def description(alert: dict) -> str:
    return (f"Video {alert['video_id']} entered super-spike at {rfc3339(alert['at'])} (rising since "
            f"{rfc3339(alert['spike_started_at'])}): {alert['views']:,} views in the last "
            f"{per_interval(alert['interval_ms'])} interval against a baseline of {alert['baseline_rate']:.1f}, "
            f"growth {alert['growth']:.1f}x, {share_text(alert)} of the platform's views, {alert['regions']} regions, "
            f"score (z) {alert['score']:.1f}. "
            f"Alert id {alert['id']}.")


def plain_payload(alert: dict, png: bytes | None = None) -> dict:
    png = alert_png(alert) if png is None else png
    return {**alert, "summary": summary(alert), "plot_png_base64": base64.b64encode(png).decode()}


def slack_payload(alert: dict) -> dict:
    runbook = alert["runbook_url"]
    fields = [("Severity", alert["severity"]), ("Video", f"`{alert['video_id']}`"),
              (f"Views/{per_interval(alert['interval_ms'])}", f"{alert['views']:,}"),
              ("Baseline", f"{alert['baseline_rate']:.1f}"), ("Growth", f"{alert['growth']:.1f}x"),
              ("Regions", str(alert["regions"])), ("Share", share_text(alert)), ("Score (z)", f"{alert['score']:.1f}"),
              ("Rising since", rfc3339(alert["spike_started_at"]))]
    return {
        "text": f"{summary(alert)} <{runbook}|runbook>",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"Super-spike: video {alert['video_id']}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": summary(alert)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Runbook"},
                                              "url": runbook}]},
            {"type": "context", "elements": [{"type": "mrkdwn",
                                              "text": f"alert `{alert['id']}` at {rfc3339(alert['at'])}"}]},
        ],
    }


def alertmanager_payload(alert: dict) -> list[dict]:
    return [{
        "labels": {"alertname": ALERTNAME, "video_id": str(alert["video_id"]), "severity": alert["severity"],
                   "spike_id": alert["id"], "service": "fyp-features"},
        "annotations": {"summary": summary(alert), "description": description(alert),
                        "runbook_url": alert["runbook_url"], "views": str(alert["views"]),
                        "growth": f"{alert['growth']:.2f}", "regions": str(alert["regions"])},
        "startsAt": rfc3339(alert["at"]),
        "generatorURL": alert["runbook_url"],
    }]


def payload_body(fmt: str, alert: dict) -> bytes:
    """The POST body for a webhook of format `fmt`."""
    if fmt == "plain":
        return orjson.dumps(plain_payload(alert))
    if fmt == "slack":
        return orjson.dumps(slack_payload(alert))
    if fmt == "alertmanager":
        return orjson.dumps(alertmanager_payload(alert))
    raise ValueError(f"unknown webhook format {fmt!r} (known: {', '.join(FORMATS)})")
