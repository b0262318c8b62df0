"""The engagement schema's validator: each rule, its reason, and the descriptor the JVM reads."""
from __future__ import annotations

import json

import orjson
import pytest

from schemas.engagement import ENGAGEMENT_V1
from schemas.record import Invalid

NOW = 1_800_000_000_000
GOOD = {"event_id": "e1", "user_id": "u1", "video_id": "v1", "event_time": NOW - 1000, "region": "US",
        "watch_time_ms": 1200, "video_duration_ms": 30_000, "liked": True, "shared": False,
        "commented": False, "skipped": False, "rewatches": 1}


def reason(doc) -> str | None:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()  # json: big ints too
    return ENGAGEMENT_V1.reason(raw, now_ms=NOW)


def with_(**kw):
    d = dict(GOOD)
    for k, v in kw.items():
        if v is ...:
            del d[k]
        else:
            d[k] = v
    return d


def test_valid_event_with_default():
    ev = ENGAGEMENT_V1.validate(orjson.dumps(with_(rewatches=...)), now_ms=NOW)
    assert ev["rewatches"] == 0 and ev["liked"] is True


@pytest.mark.parametrize("doc,why", [
    (b'{"event_id": "e1"', "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (b'{"a": NaN}', "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b"42", "not_an_object"),
    (b"x" * 5000, "too_large"),
    (with_(extra=1), "unknown_field:extra"),
    (with_(video_id=...), "missing_field:video_id"),
    (with_(watch_time_ms="12"), "wrong_type:watch_time_ms"),
    (with_(watch_time_ms=12.0), "wrong_type:watch_time_ms"),
    (with_(watch_time_ms=True), "wrong_type:watch_time_ms"),
    (with_(watch_time_ms=None), "wrong_type:watch_time_ms"),
    (with_(liked=1), "wrong_type:liked"),
    (with_(watch_time_ms=-1), "out_of_range:watch_time_ms"),
    (with_(watch_time_ms=2**70), "out_of_range:watch_time_ms"),
    (with_(video_duration_ms=0), "out_of_range:video_duration_ms"),
    (with_(event_time=100), "out_of_range:event_time"),
    (with_(event_time=NOW + 3_600_000), "in_future:event_time"),
    (with_(region="usa"), "bad_format:region"),
    (with_(video_id="a{b}"), "bad_format:video_id"),
    (with_(video_id="vidé"), "bad_format:video_id"),
    (with_(video_id=""), "bad_format:video_id"),
    (with_(rewatches=-2), "out_of_range:rewatches"),
])
def test_invalid_events_and_their_reasons(doc, why):
    assert reason(doc) == why


def test_first_failure_wins_in_schema_order():
    assert reason(with_(event_id=5, region="x")) == "wrong_type:event_id"


def test_validate_raises_invalid():
    with pytest.raises(Invalid) as e:
        ENGAGEMENT_V1.validate(b"{}", now_ms=NOW)
    assert e.value.reason == "missing_field:event_id"


def test_descriptor_is_what_the_jvm_parser_reads():
    d = json.loads(ENGAGEMENT_V1.descriptor_json())
    assert [f["name"] for f in d["fields"]] == list(GOOD)
    rew = d["fields"][-1]
    assert rew == {"name": "rewatches", "kind": "long", "required": False, "default": 0, "min": 0, "max": 1000}
    assert d["max_bytes"] == 4096
