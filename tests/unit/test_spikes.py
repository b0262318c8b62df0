"""The spike book (operators/spikes.py): transitions relative to the platform, unknown pasts,
uploads, hysteresis, calm-down without views, damping, corrections, eviction, state bytes."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from operators.spikes import (NORMAL, RISING, SUPER_SPIKE, UNKNOWN_UPLOAD, Interval, SpikeBook, SpikeRules,
                              replay)

MIN = 60_000
RULES = SpikeRules()
OLD = -30 * 86_400_000  # uploaded long before the series starts


def platform(minutes: int, rate_per_min: float, videos: int = 200, seed: int = 0, swing: float = 0.0):
    """Per-minute Poisson views of `videos` steady videos (Zipf shares), with a daily swing."""
    rng = np.random.default_rng(seed)
    share = 1.0 / np.arange(1, videos + 1) ** 1.1
    share /= share.sum()
    t = np.arange(minutes)
    total = rate_per_min * (1 + swing * np.sin(2 * np.pi * t / 1440))
    return rng.poisson(share[:, None] * total[None, :])


def intervals(counts: np.ndarray, extra: dict | None = None, uploaded: dict | None = None, start: int = 0):
    """One Interval per minute: videos b0..bN with `counts`, plus `extra` {video: views per minute}."""
    extra, uploaded = extra or {}, uploaded or {}
    out = []
    for m in range(counts.shape[1]):
        ids = [f"b{i}" for i in np.nonzero(counts[:, m])[0]]
        views = [int(counts[int(v[1:]), m]) for v in ids]
        for video, series in extra.items():
            if m < len(series) and series[m]:
                ids.append(video)
                views.append(int(series[m]))
        if not ids:
            continue
        up = [uploaded.get(v, OLD) for v in ids]
        out.append(Interval(start + m * MIN, ids, np.array(views), np.ones(len(ids), dtype=np.int64) * 2,
                            np.array(up, dtype=np.int64), int(sum(views)), len(ids)))
    return out


def states_of(transitions, video):
    return [(t["previous_state"], t["state"], t["at"] // MIN - 1) for t in transitions if t["video_id"] == video]


def test_surge_of_an_obscure_video_rises_then_becomes_super_spike():
    base = platform(240, 6000)
    target = np.zeros(240, dtype=np.int64)
    target[::20] = 1  # about one view per 20 min
    target[150:200] = np.random.default_rng(1).poisson(800, 50)
    transitions, last, book = replay(intervals(base, {"x": target}), RULES)
    # a step this size is super in its first minute (rising and super at once); it ends 30 calm
    # minutes after its last busy one
    assert states_of(transitions, "x") == [(NORMAL, SUPER_SPIKE, 150), (SUPER_SPIKE, NORMAL, 199 + RULES.calm_intervals)]
    t = transitions[0]
    assert t["series"][-1] == target[150] and t["series_start"] == t["at"] - len(t["series"]) * MIN
    assert t["share"] == pytest.approx(target[150] / t["platform_views"])
    assert {t["video_id"] for t in transitions} == {"x"}  # no other video
    assert last["x"].values[1] == NORMAL and last["x"].as_of == (200 + RULES.calm_intervals) * MIN
    assert last["x"].values[2] == 0 and last["x"].absorbed == target.sum()
    assert last["x"].values[5] == 0  # views_last_interval: the interval it calmed down in had none


def test_steady_platform_with_a_daily_swing_and_noise_never_pages():
    counts = platform(2 * 1440, 20_000, videos=300, seed=2, swing=0.6)
    noise = np.random.default_rng(3).gamma(30, 1 / 30, counts.shape)
    counts = np.random.default_rng(4).poisson(counts * noise)
    transitions, _, _ = replay(intervals(counts), RULES)
    assert [t for t in transitions if t["state"] == SUPER_SPIKE] == []


def test_the_same_surge_pages_on_a_small_and_a_large_platform_with_one_config():
    for rate in (600, 60_000):
        base = platform(240, rate, seed=5)
        mean_active = rate / max(1, np.count_nonzero(base[:, 0]))
        target = np.zeros(240, dtype=np.int64)
        target[::30] = 1  # an obscure video
        target[150:190] = np.random.default_rng(6).poisson(40 * mean_active, 40)
        transitions, _, _ = replay(intervals(base, {"x": target}), RULES)
        assert SUPER_SPIKE in [s[1] for s in states_of(transitions, "x")], rate
        assert all(t["video_id"] == "x" for t in transitions), rate


def test_a_climb_on_a_quiet_platform_pages_and_its_steady_traffic_does_not():
    # about two views a minute per active video: a video the book never saw climbs from nothing
    # to 10 views a minute in 30 minutes. Its baseline learns at the steady rate from its first
    # view; as a running mean over a few intervals it took the climb's first minutes as its normal
    # and never paged.
    base = platform(300, 120, videos=300, seed=3)
    target = np.zeros(300, dtype=np.int64)
    target[150:220] = np.round(np.minimum(np.arange(1, 71) / 30, 1.0) * 10)
    transitions, _, _ = replay(intervals(base, {"x": target}), RULES)
    assert [s[1] for s in states_of(transitions, "x")] == [RISING, SUPER_SPIKE, NORMAL]
    assert states_of(transitions, "x")[1][2] < 150 + 30  # before the climb's top
    assert {t["video_id"] for t in transitions} == {"x"}
    # a day of the quiet platform with noise: videos come and go, none pages
    counts = platform(1440, 120, videos=2000, seed=6, swing=0.6)
    counts = np.random.default_rng(7).poisson(counts * np.random.default_rng(8).gamma(5, 1 / 5, counts.shape))
    transitions, _, _ = replay(intervals(counts), RULES)
    assert [t for t in transitions if t["state"] == SUPER_SPIKE] == []


def test_the_platform_noise_is_learnt_within_the_first_half_hour_of_a_fresh_start():
    # per-minute noise with a coefficient of variation of 0.7 (dispersion 0.5): learnt from 0 at
    # the steady rate, the book took it for Poisson noise for hours and paged on it
    counts = platform(240, 60_000, videos=300, seed=1)
    counts = np.random.default_rng(11).poisson(counts * np.random.default_rng(21).gamma(2, 1 / 2, counts.shape))
    book, learnt = SpikeBook(RULES), []
    for iv in intervals(counts):
        book.step(iv)
        learnt.append(book.dispersion)
    assert learnt[29] >= 0.5 * learnt[-1] > 0.1


def test_a_fresh_start_over_busy_videos_does_not_page_but_a_new_upload_that_takes_off_does():
    base = platform(60, 6000)
    busy = np.full(60, 2000)  # popular before the job started: first seen busy, past unknown
    new = np.zeros(60, dtype=np.int64)
    new[20:] = 2000  # uploaded at minute 20, popular from its first minute
    transitions, _, _ = replay(intervals(base, {"busy": busy, "new": new}, {"new": 20 * MIN}), RULES)
    assert states_of(transitions, "busy") == []
    assert states_of(transitions, "new")[0][1:] == (SUPER_SPIKE, 20)
    # with an unknown upload time, first seen busy while the book warms up: an unknown past
    early = np.zeros(60, dtype=np.int64)
    early[5:] = 2000
    transitions, _, _ = replay(intervals(base, {"new": early}, {"new": UNKNOWN_UPLOAD}), RULES)
    assert states_of(transitions, "new") == []


@pytest.mark.parametrize("silent_minutes", [119, 180])
def test_a_silence_of_the_whole_platform_as_long_as_idle_ttl_is_a_fresh_start(silent_minutes):
    # no view anywhere (an outage upstream) until every video is evicted (119 empty minutes: the
    # last views are 120 minutes old when the platform's next interval comes); the book saw
    # nothing of them meanwhile, so their return is not a surge from nothing
    counts = platform(120, 6000, seed=1)
    new = np.zeros(120, dtype=np.int64)
    new[100:] = 2000  # uploaded after the silence, popular from its first minute: still pages
    after = 60 + silent_minutes
    ivs = intervals(counts[:, :60]) + intervals(counts[:, 60:], {"new": new[60:]}, {"new": (after + 40) * MIN},
                                                start=after * MIN)
    transitions, _, _ = replay(ivs, RULES)
    assert {t["video_id"] for t in transitions} == {"new"}
    assert states_of(transitions, "new")[0][1:] == (SUPER_SPIKE, after + 40)
    # the same when the silence comes as intervals without views, through a restore in the middle
    empty = [Interval(m * MIN, [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                      np.zeros(0, dtype=np.int64), 0, 0) for m in range(60, after)]
    book, seen = SpikeBook(RULES), []
    for iv in ivs[:60] + empty[:50]:
        seen += book.step(iv)[0]
    book = SpikeBook.from_bytes(RULES, book.to_bytes())
    assert book.silent == 50
    seen += [t for iv in empty[50:] + ivs[60:] for t in book.step(iv)[0]]
    assert seen == transitions


def test_a_book_written_before_the_watch_and_noise_counts_restores():
    base = platform(30, 6000, seed=2)
    book = SpikeBook(RULES)
    for iv in intervals(base):
        book.step(iv)
    table = pa.ipc.open_stream(book.to_bytes()).read_all()
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    old = {k: meta[k] for k in ("format", "interval", "dispersion")} | {"stepped": "30"}
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema.with_metadata(old)) as writer:
        writer.write_table(table.replace_schema_metadata(old))
    restored = SpikeBook.from_bytes(RULES, sink.getvalue().to_pybytes())
    assert (restored.watched, restored.silent, restored.dispersion_seen) == (30, 0, 30)
    assert restored.dispersion == book.dispersion and len(restored) == len(book)


def test_a_busy_video_after_its_warmup_pages_on_a_surge():
    base = platform(60, 6000)
    busy = np.full(60, 200)
    busy[RULES.warmup_intervals + 5:] = 200 * 30
    transitions, _, _ = replay(intervals(base, {"busy": busy}), RULES)
    assert states_of(transitions, "busy")[0][1:] == (SUPER_SPIKE, RULES.warmup_intervals + 5)


def test_spike_ends_after_calm_intervals_even_without_views_and_one_calm_interval_does_not_end_it():
    base = platform(200, 6000)
    target = np.zeros(200, dtype=np.int64)
    target[:50:10] = 1
    target[50:60] = 3000
    target[60:80:2] = 3000  # calm every other interval: the spike goes on
    transitions, last, book = replay(intervals(base, {"x": target}), RULES)
    states = states_of(transitions, "x")
    assert states == [(NORMAL, SUPER_SPIKE, 50), (SUPER_SPIKE, NORMAL, 78 + RULES.calm_intervals)]  # last busy: 78
    assert last["x"].values[1] == NORMAL and last["x"].values[2] == 0


def test_a_slow_climb_is_not_a_super_spike_and_becomes_the_new_normal():
    base = platform(300, 6000)
    target = np.zeros(300, dtype=np.int64)
    target[::10] = 1
    target[100:] = 40  # an obscure video lastingly at about 3x the floor: rising, then normal
    transitions, _, _ = replay(intervals(base, {"x": target}), RULES)
    states = [s[:2] for s in states_of(transitions, "x")]
    assert SUPER_SPIKE not in [s[1] for s in states] and states[-1][1] == NORMAL and len(states) <= 2


def test_damping_halves_per_half_life_after_massive_reach():
    rules = SpikeRules(massive_reach=5000, half_life_ms=30 * MIN, damping_floor=0.2)
    base = platform(200, 6000)
    target = np.zeros(200, dtype=np.int64)
    target[:50:10] = 1
    target[50:] = 1000  # 5,000 views: massive at the end of minute 54
    book = SpikeBook(rules)
    for iv in intervals(base, {"x": target})[:55]:
        book.step(iv)
    values = book.features("x")
    assert values[1] == SUPER_SPIKE and values[3] == 1.0 and values[4] == rules.skip_weight
    for iv in intervals(base, {"x": target})[55:85]:
        book.step(iv)
    assert book.features("x")[3] == pytest.approx(0.5)
    for iv in intervals(base, {"x": target})[85:]:
        book.step(iv)
    assert book.features("x")[3] == rules.damping_floor


def test_an_intervals_updates_are_each_videos_features_read_one_by_one():
    # step builds its updates from columns read once (SpikeBook._updates); each must equal the
    # update the book gives for that video alone (_update, the path of corrections), damping included
    rules = SpikeRules(massive_reach=5000, half_life_ms=30 * MIN, damping_floor=0.2)
    target = np.zeros(120, dtype=np.int64)
    target[:50:10] = 1
    target[50:] = 1000
    book = SpikeBook(rules)
    damped = 0
    for iv in intervals(platform(120, 6000), {"x": target}):
        _, updates = book.step(iv)
        assert updates == [book._update(book.index[u.video_id]) for u in updates]
        damped += sum(1 for u in updates if u.values[3] < 1.0)
    assert damped > 0, "the damped branch was compared too"


def test_correction_adds_to_the_series_and_the_version_without_rewinding():
    book = SpikeBook(RULES)
    for iv in intervals(platform(10, 6000)):
        book.step(iv)
    s = book.index["b0"]
    before = (book.series_of(s)[1], int(book.c["absorbed"][s]), book.features("b0"))
    update = book.correct("b0", 7 * MIN, 4)
    after = book.series_of(s)[1]
    assert after[7] == before[0][7] + 4 and update.absorbed == before[1] + 4 and update.values == before[2]
    assert book.correct("unknown", 7 * MIN, 1) is None


def test_idle_videos_are_evicted_and_a_video_the_book_never_saw_has_a_zero_past():
    rules = SpikeRules(idle_ttl_ms=30 * MIN)
    base = platform(120, 6000)
    target = np.zeros(120, dtype=np.int64)
    target[:10] = 200  # busy from the book's start: a past it must learn first
    target[80:] = 200 * 30  # back from 70 minutes without a view: a surge from nothing
    book = SpikeBook(rules)
    transitions = []
    for iv in intervals(base, {"x": target}):
        transitions += book.step(iv)[0]
        if iv.start == 50 * MIN:
            assert "x" not in book.index
    assert states_of(transitions, "x")[0][1:] == (SUPER_SPIKE, 80)


def test_state_bytes_restore_to_the_same_run_and_are_bounded():
    base = platform(240, 6000, seed=8)
    target = np.zeros(240, dtype=np.int64)
    target[:150:20] = 1
    target[150:200] = 3000
    ivs = intervals(base, {"x": target})
    whole, _, _ = replay(ivs, RULES)
    book = SpikeBook(RULES)
    first = []
    for iv in ivs[:160]:
        first += book.step(iv)[0]
    data = book.to_bytes()
    restored = SpikeBook.from_bytes(RULES, data)
    rest = [t for iv in ivs[160:] for t in restored.step(iv)[0]]
    assert first + rest == whole and len(whole) >= 2
    assert len(data) < 1000 * len(book) and restored.features("x") is not None
    # a book restores under rules with a longer history (an upgrade): the kept series carry over
    longer = SpikeBook.from_bytes(SpikeRules(history=90), data)
    assert longer.series_of(longer.index["x"])[1][-60:] == book.series_of(book.index["x"])[1][-60:]


def test_rules_from_config():
    from settings.config import load_config

    cfg = load_config(overrides={"spikes.rise_z": 5, "spikes.calm_intervals": 7, "spikes.idle_ttl": "1h",
                                 "spikes.climb_growth": 3})
    rules = SpikeRules.from_config(cfg.spikes)
    assert rules.rise_z == 5 and rules.calm_intervals == 7 and rules.idle_ttl_ms == 3_600_000
    assert rules.climb_growth == 3 and rules.skip_weight == cfg.spikes.damping.skip_weight


def test_a_viral_climb_goes_on_rising_until_it_is_super():
    base = platform(240, 6000)
    target = np.zeros(240, dtype=np.int64)
    target[::10] = 1
    target[100:] = np.minimum(6000, 20 * 2.0 ** (np.arange(140) / 25))  # doubles every 25 intervals
    states = [s[:2] for s in states_of(replay(intervals(base, {"x": target}), RULES)[0], "x")]
    assert (NORMAL, RISING) in states and (RISING, SUPER_SPIKE) in states
    # the same climb with the rise ended after rise_window regardless: its level became the normal
    stalled = SpikeRules(climb_growth=0.0)
    states = [s[:2] for s in states_of(replay(intervals(base, {"x": target}), stalled)[0], "x")]
    assert SUPER_SPIKE not in [s[1] for s in states] and (RISING, NORMAL) in states
