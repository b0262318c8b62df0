"""A backfill's end of input (the newest valid event time of its file) as the JVM finds it, against
the Python validator line by line, on a file with hostile lines, invalid records newer than every
valid one, CRLF line ends and a last line without a newline."""
from __future__ import annotations

import json
import time

from schemas.engagement import ENGAGEMENT_V1, EVENT_TIME_FIELD
from tests.hostile import hostile_payloads
from tests.unit.jvm_ops import udfs

NO_VALID_RECORD = -(2**63)


def _good(i: int, event_time: int) -> dict:
    return {"event_id": f"e{i}", "user_id": f"u{i % 7}", "video_id": f"v{i % 5}", "event_time": event_time,
            "region": "US", "watch_time_ms": 1200, "video_duration_ms": 30_000, "liked": i % 2 == 0,
            "shared": False, "commented": False, "skipped": False, "rewatches": 0}


def _newest_valid_in_python(lines: list[bytes]) -> int | None:
    times = []
    for line in lines:
        try:
            times.append(ENGAGEMENT_V1.validate(line)[EVENT_TIME_FIELD])
        except Exception:
            continue
    return max(times) if times else None


def _newest_in_jvm(path) -> int:
    return udfs().NewestEventTime.of(str(path), EVENT_TIME_FIELD, ENGAGEMENT_V1.descriptor_json())


def test_the_newest_valid_event_time_is_the_python_validators(tmp_path):
    now = int(time.time() * 1000)
    base = now - 3_600_000
    valid = [json.dumps(_good(i, base + 1000 * ((i * 37) % 500))).encode() for i in range(500)]
    newest = json.dumps(_good(999, base + 600_000)).encode()  # the last line, no newline after it
    newer_but_invalid = [
        json.dumps({**_good(1000, base + 900_000), "region": "ZZ"}).encode(),
        json.dumps({**_good(1001, now + 20 * 60_000)}).encode(),  # 20 min ahead of the clock
        json.dumps({**_good(1002, base + 900_000), "extra": 1}).encode(),
        json.dumps(_good(1003, base + 900_000)).encode()[:-1],  # cut off
    ]
    lines = valid[:250] + newer_but_invalid + hostile_payloads(_good(7, base + 950_000)) + [b""] + valid[250:]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines[:100]) + b"\r\n" + b"\n".join(lines[100:]) + b"\n" + newest)
    expected = _newest_valid_in_python(path.read_bytes().split(b"\n"))
    assert expected == base + 600_000
    assert _newest_in_jvm(path) == expected


def test_a_file_without_a_valid_record_has_no_end(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(hostile_payloads(_good(7, int(time.time() * 1000) - 60_000))))
    assert _newest_valid_in_python(path.read_bytes().split(b"\n")) is None
    assert _newest_in_jvm(path) == NO_VALID_RECORD


def test_a_file_read_in_parts_side_by_side_gives_the_same_end(tmp_path):
    """The pass reads large files in one part per core. Whichever line is the newest, every split of
    the lines (a part's start inside a line, on a newline, in the last line, a part with no line
    start) finds it: a line lost or cut at a part's edge would miss it."""
    base = int(time.time() * 1000) - 3_600_000
    valid = [_good(i, base + 1000 * i) for i in range(40)]
    hostile = hostile_payloads(_good(7, base + 950_000))
    newest = udfs().NewestEventTime.of
    for j in range(len(valid)):
        records = [dict(r) for r in valid]
        records[j]["event_time"] = base + 900_000
        lines = [json.dumps(r).encode() for r in records]
        lines[20:20] = hostile
        path = tmp_path / "events.jsonl"
        path.write_bytes(b"\n".join(lines))  # no newline after the last line
        assert _newest_valid_in_python(lines) == base + 900_000
        for parts in (2, 3, 5, 8, len(path.read_bytes()) // 5):
            assert newest(str(path), EVENT_TIME_FIELD, ENGAGEMENT_V1.descriptor_json(), parts) == base + 900_000, (j, parts)
