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


FIELDS = ("event_id", "user_id", "video_id", "event_time", "region", "watch_time_ms", "video_duration_ms", "liked",
          "shared", "commented", "skipped", "rewatches")
ODD_TEXT = ["\u202eevil", "a\u200bb", "nul\u0000byte", "\ud800", "\U0001f600" * 3, "\u00e9", "\uffff", "x\u0301",
            "\u0644\u0627", "tab\tnew\nline", "back\\slash", "quote\"q"]


def hostile_mix(good_events: list[dict], n: int, seed: int = 5) -> list[tuple[str, bytes]]:
    """`n` distinct hostile payloads, (family, bytes), made from valid events by the families the
    issue names: broken JSON, wrong types, missing and extra fields, negative and huge numbers,
    unknown regions, oversized payloads, odd unicode (and raw garbage). Each is checked to be
    rejected by the schema (a mutation that happens to stay valid is drawn again)."""
    import random

    from schemas.engagement import ENGAGEMENT_V1

    rng = random.Random(seed)
    wrong_values = ["1", 1.5, True, None, [], {}, [1, 2], {"v": 1}, "", "true", -0.0, 1e400]

    def mutate(family: str, e: dict, i: int) -> bytes:
        d = dict(e)
        d["event_id"] = f"{e['event_id']}-h{i}"  # distinct payloads, so the dead-letter check is exact
        if family == "broken_json":
            raw = json.dumps(d).encode()
            return rng.choice([raw[:rng.randrange(1, len(raw) - 1)], raw.replace(b":", b"", 1),
                               raw.replace(b'"', b"'", 2), raw + b"}", b"{" + raw, raw.replace(b",", b",,", 1)])
        if family == "wrong_type":
            d[rng.choice(FIELDS)] = rng.choice(wrong_values)
        elif family == "missing_field":
            for f in rng.sample([f for f in FIELDS if f != "rewatches"], rng.randint(1, 3)):
                d.pop(f, None)
        elif family == "extra_field":
            d[rng.choice(["extra", "Region", "event_time ", "__proto__", "video-id", "x" * 40])] = rng.randint(0, 9)
        elif family == "bad_number":
            f = rng.choice(["event_time", "watch_time_ms", "video_duration_ms", "rewatches"])
            d[f] = rng.choice([-1, -(10 ** rng.randint(1, 30)), 10 ** rng.randint(16, 40), 2 ** 63, -(2 ** 63) - 1])
        elif family == "unknown_region":
            d["region"] = rng.choice(["ZZ", "XX", "AA", "QQ", "EU", "UK", "us", "U5", "USA", "", " US", "U"])
        elif family == "oversized":
            d[rng.choice(["user_id", "video_id", "extra_padding"])] = "x" * rng.randint(4100, 20000)
        elif family == "odd_unicode":
            d[rng.choice(["event_id", "user_id", "video_id", "region"])] = rng.choice(ODD_TEXT) + str(i)
            return json.dumps(d, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        elif family == "garbage":
            return rng.choice([bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))),
                               b"\xef\xbb\xbf" + json.dumps(d).encode(), json.dumps([d]).encode(),
                               json.dumps(d).encode("utf-16"), b"null", str(i).encode()])
        return json.dumps(d).encode()

    families = ["broken_json", "wrong_type", "missing_field", "extra_field", "bad_number", "unknown_region",
                "oversized", "odd_unicode", "garbage"]
    out, seen, i = [], set(), 0
    while len(out) < n:
        family = families[len(out) % len(families)]
        p = mutate(family, rng.choice(good_events), i)
        i += 1
        if p not in seen and ENGAGEMENT_V1.reason(p) is not None:
            seen.add(p)
            out.append((family, p))
    return out
