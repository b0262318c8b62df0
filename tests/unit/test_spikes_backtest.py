"""`fyp spikes backtest` (operators/spikes_backtest.py) against the independent batch oracle
(tests/oracle_spikes.py): pandas counts per (video, interval) fed to the per-video code."""
import orjson

from fyp.generator.traffic import TrafficSpec, generate
from operators.spikes import SpikeRules
from operators.spikes_backtest import UploadTimes, backtest
from tests import oracle_spikes

RULES = SpikeRules()
START = 1_794_000_000_000


def traffic(**kw):
    spec = TrafficSpec(seed=5, start_ms=START, duration_ms=2 * 3_600_000, mean_rate=10, videos=400, users=3000,
                       max_ooo_ms=500, spikes=2, spike_peak_share=0.5, **kw)
    return generate(spec)


def run(t):
    return backtest(t.payloads, RULES, max_out_of_orderness_ms=500, allowed_lateness_ms=60_000,
                    uploads=UploadTimes(t.uploads))


def keyed(transitions):
    return sorted((t["video_id"], t["at"], t["state"], orjson.dumps(t)) for t in transitions)


def test_backtest_equals_the_oracle_on_traffic_within_the_bound():
    t = traffic(ooo_share=0.1)
    got = run(t)
    want, last = oracle_spikes.replay(t.events, t.uploads, RULES)
    assert got.transitions and keyed(got.transitions) == keyed(want)
    assert got.last_updates == last
    assert got.late == got.corrections == 0 and got.events == len(t.payloads)
    s = got.summary()
    assert s["alerts"] == sum(1 for x in want if x["state"] == "super_spike") and s["videos_alerted"] >= 1


def test_late_events_are_left_out_and_malformed_ones_counted():
    t = traffic(ooo_share=0.05, late_share=0.02, malformed_share=0.01)
    got = run(t)
    assert got.invalid == sum(1 for k in t.kinds if k == "malformed")
    # the late events the backtest dropped are exactly those more than the allowed lateness behind
    # the newest event before them (less the out-of-orderness bound), by the oracle's own rule
    newest, late, kept = None, 0, []
    for p, e in zip(t.payloads, t.events):
        if e is None:
            continue
        if newest is not None and e["event_time"] + 60_000 < newest - 500:
            late += 1
        else:
            kept.append(e)
        newest = e["event_time"] if newest is None else max(newest, e["event_time"])
    assert got.late == late > 0
    want, _ = oracle_spikes.replay(kept, t.uploads, RULES)
    assert keyed(got.transitions) == keyed(want)
