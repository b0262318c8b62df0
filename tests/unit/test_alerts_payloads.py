"""The alert event and the three webhook payload shapes: plain JSON, Slack incoming webhook,
Alertmanager v2 POST /api/v2/alerts."""
from __future__ import annotations

import base64
import re

import orjson
import pytest

from services.alerts.alert import alert_id, build_alert, enters_super_spike, safe_file_stem
from services.alerts.payloads import (alertmanager_payload, payload_body, plain_payload, rfc3339, slack_payload)
from services.alerts.tail import alert_line

RUNBOOK = "https://example.org/runbooks/super-spike.md"


def transition(**over) -> dict:
    t = {"video_id": "v42", "state": "super_spike", "previous_state": "rising", "at": 1_700_000_400_000,
         "spike_started_at": 1_700_000_160_000, "score": 14.2, "views": 1234, "baseline_rate": 12.5,
         "growth": 98.72, "regions": 5, "platform_views": 61_700, "share": 0.02, "interval_ms": 60_000, "series_start": 1_699_999_800_000,
         "series": [10, 12, 14, 11, 30, 200, 600, 900, 1100, 1234]}
    t.update(over)
    return t


def alert(**over) -> dict:
    return build_alert(transition(**over), "critical", RUNBOOK, "/tmp/x.png")


def test_only_entries_into_super_spike_alert_and_ids_are_per_spike():
    assert enters_super_spike(transition())
    assert not enters_super_spike(transition(state="rising", previous_state="normal"))
    assert not enters_super_spike(transition(state="normal", previous_state="super_spike"))
    assert not enters_super_spike(transition(previous_state="super_spike"))
    assert alert_id(transition()) == "v42:1700000160000"
    a = alert()
    assert a["id"] == "v42:1700000160000" and a["type"] == "video_super_spike" and a["severity"] == "critical"
    assert a["series"] == transition()["series"] and a["runbook_url"] == RUNBOOK
    assert build_alert(transition(), "critical", RUNBOOK, "/tmp/x.png") == a  # deterministic


def test_safe_file_stem():
    s = safe_file_stem("v/../42:17")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", s) and "/" not in s
    assert safe_file_stem("a:1") != safe_file_stem("a_1")


def test_plain_payload_has_every_field_the_runbook_and_the_png():
    a = alert()
    p = plain_payload(a)
    for k, v in a.items():
        assert p[k] == v
    assert p["runbook_url"] == RUNBOOK and "v42" in p["summary"] and "2 % of the platform" in p["summary"]
    assert base64.b64decode(p["plot_png_base64"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert orjson.loads(payload_body("plain", a))["id"] == a["id"]


def test_slack_payload_shape():
    p = slack_payload(alert())
    assert isinstance(p["text"], str) and "v42" in p["text"] and RUNBOOK in p["text"]
    types = [b["type"] for b in p["blocks"]]
    assert types[0] == "header" and "section" in types and "actions" in types
    fields = next(b for b in p["blocks"] if "fields" in b)["fields"]
    text = " ".join(f["text"] for f in fields)
    assert all(f["type"] == "mrkdwn" for f in fields) and len(fields) <= 10  # Slack's limit
    for needle in ("1,234", "98.7x", "*Regions*\n5", "critical"):
        assert needle in text
    button = next(b for b in p["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["url"] == RUNBOOK
    assert orjson.loads(payload_body("slack", alert())) == p


def test_alertmanager_v2_payload_shape():
    body = alertmanager_payload(alert())
    assert isinstance(body, list) and len(body) == 1
    a = body[0]
    assert set(a) == {"labels", "annotations", "startsAt", "generatorURL"}
    assert a["labels"]["alertname"] == "VideoSuperSpike" and a["labels"]["video_id"] == "v42"
    assert a["labels"]["severity"] == "critical" and a["labels"]["spike_id"] == "v42:1700000160000"
    assert all(isinstance(v, str) for v in a["labels"].values())  # Alertmanager labels are strings
    assert all(isinstance(v, str) for v in a["annotations"].values())
    assert {"summary", "description", "runbook_url"} <= set(a["annotations"])
    assert a["annotations"]["runbook_url"] == RUNBOOK
    assert a["startsAt"] == "2023-11-14T22:20:00.000Z" == rfc3339(1_700_000_400_000)
    assert a["generatorURL"].startswith("https://")
    with pytest.raises(ValueError):
        payload_body("pagerduty", alert())


def test_tail_line_is_readable():
    line = alert_line(alert())
    for needle in ("2023-11-14T22:20:00.000Z", "CRITICAL", "video v42", "1,234 views/1m", "growth 98.7x",
                   "5 regions", RUNBOOK):
        assert needle in line
    assert "unreadable" in alert_line({"id": "x"})
