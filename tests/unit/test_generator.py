from collections import Counter

import orjson

from fyp.generator.traffic import TrafficSpec, generate
from schemas.engagement import ENGAGEMENT_V1

SPEC = TrafficSpec(seed=3, start_ms=1_700_000_000_000, duration_ms=1_800_000, mean_rate=20, videos=500,
                   ooo_share=0.1, straggler_share=0.05, late_share=0.02, malformed_share=0.02, spikes=2)


def test_same_seed_same_traffic():
    assert generate(SPEC).payloads == generate(SPEC).payloads


def test_shares_validity_and_popularity():
    t = generate(SPEC)
    kinds = Counter(t.kinds)
    n = len(t.payloads)
    assert 0.01 < kinds["malformed"] / n < 0.03 and 0.01 < kinds["late"] / n < 0.03
    now = SPEC.start_ms + SPEC.duration_ms
    for p, k in zip(t.payloads, t.kinds):
        assert (ENGAGEMENT_V1.reason(p, now_ms=now) is None) == (k != "malformed")
    views = Counter(e["video_id"] for e in t.events if e)
    top = views.most_common(10)
    assert top[0][1] > 20 * (sum(views.values()) / len(views))  # heavy head: Zipf-like
    assert len(t.spikes) == 2 and all(s["extra_views"] > 0 for s in t.spikes)


def test_arrival_order_out_of_order_within_bounds():
    t = generate(SPEC)
    times = [orjson.loads(p)["event_time"] for p, k in zip(t.payloads, t.kinds) if k == "ok"]
    assert times == sorted(times)  # in-order events keep their order
    # how far behind the newest event seen so far each event arrives, by kind
    # (late ones due after the stream's end arrive at its end: only those within it are measured)
    last_ok = max(i for i, k in enumerate(t.kinds) if k == "ok")
    behind: dict[str, list[int]] = {}
    newest = None
    for i, (p, kind) in enumerate(zip(t.payloads, t.kinds)):
        if kind == "malformed":
            continue
        at = orjson.loads(p)["event_time"]
        if newest is not None and (kind != "late" or i < last_ok):
            behind.setdefault(kind, []).append(newest - at)
        newest = at if newest is None else max(newest, at)
    assert max(behind["ok"]) <= 0
    assert 0 < max(behind["ooo"]) < SPEC.max_ooo_ms  # within the watermark's bound
    assert max(behind["straggler"]) < SPEC.straggler_ms[1] and max(behind["straggler"]) > SPEC.max_ooo_ms
    # late ones arrive at least their delay behind, less the widest gap between in-order events
    widest_gap = max(b - a for a, b in zip(times, times[1:]))
    assert min(behind["late"]) >= SPEC.late_ms[0] - widest_gap and max(behind["late"]) < SPEC.late_ms[1]
