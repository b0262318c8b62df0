"""Hand-made hostile payloads: each must be rejected by both the Python validator and the JVM
parser, with the same reason."""
from __future__ import annotations

import json


def hostile_payloads(good: dict) -> list[bytes]:
    def variant(**kw) -> bytes:
        d = dict(good)
        d["event_id"] = good["event_id"] + "-h"
        for k, v in kw.items():
            if v is ...:
                d.pop(k)
            else:
                d[k] = v
        return json.dumps(d).encode()

    base = json.dumps(good).encode()
    return [
        b"", b" ", b"null", b"true", b"\"str\"", b"[]", b"{", b"}", b"{}", base + b" trailing", base + b"{}",
        base[:-1] + b",}", b"\xff\xfe\x00", b"\xc3\x28" + base, base.replace(b"{", b"{\"x\": NaN, ", 1),
        b"[" * 2000 + b"]" * 2000, b"{\"a\":" * 600 + b"1" + b"}" * 600,
        variant(event_id=None), variant(event_id=7), variant(event_id="a b"), variant(event_id="x" * 129),
        variant(event_id="\u00e9t\u00e9"), variant(video_id="\ud83d\ude00"), variant(video_id="{tag}"),
        variant(user_id=...), variant(region="U1"), variant(region="us"), variant(region=""),
        variant(event_time=-1), variant(event_time=1.5e12), variant(event_time="1790000000000"),
        variant(event_time=2**63), variant(event_time=-(2**64)), variant(event_time=99_999_999_999_999),
        variant(watch_time_ms=-5), variant(watch_time_ms=10**30), variant(watch_time_ms=[1]),
        variant(video_duration_ms=0), variant(video_duration_ms={"ms": 5}), variant(liked="true"),
        variant(liked=1), variant(liked=None), variant(skipped=0), variant(rewatches=1.0),
        variant(rewatches=-1), variant(rewatches=True), variant(extra_field="x"), variant(**{"": 1}),
        variant(comment="x" * 5000),
        base.replace(b'"liked"', b'"liked": true, "liked"', 1).replace(b"-h", b"") + b"x",
    ]
