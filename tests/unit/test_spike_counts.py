"""The count-level platform generator of the spike quality bench (fyp/generator/spike_counts.py)
and the alert scoring it is judged with (anomaly/spike_eval.py)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from anomaly.spike_eval import alert_quality
from fyp.generator.spike_counts import SHAPES, CountTrafficSpec, generate_counts

SPEC = CountTrafficSpec(rate=200, videos=500, hours=6, seed=3, spikes_per_day=40)


def test_counts_are_deterministic_and_platform_totals_add_up():
    a, b = generate_counts(SPEC), generate_counts(SPEC)
    assert np.array_equal(a.counts, b.counts) and a.labels == b.labels
    assert np.array_equal(a.platform_views, a.counts.sum(axis=0))
    assert np.array_equal(a.platform_videos, np.count_nonzero(a.counts, axis=0))
    assert (a.regions <= a.counts).all() and (a.regions[a.counts > 0] >= 1).all()
    # the daily curve: the busiest hour carries clearly more than the quietest
    hourly = a.platform_views.reshape(-1, 60).sum(axis=1)
    assert hourly.max() > 1.3 * hourly.min()
    rows = list(a.rows())
    assert len(rows) == a.video_minutes and rows == sorted(rows, key=lambda r: (a.video_ids.index(r[0]), r[1]))


def test_labels_are_surges_of_every_shape():
    t = generate_counts(SPEC)
    assert {lab["shape"] for lab in t.labels} == set(SHAPES)
    for lab in t.labels:
        row = t.video_ids.index(lab["video_id"])
        onset = (lab["onset_ms"] - t.minutes[0]) // 60_000
        ref = (lab["ref_ms"] - t.minutes[0]) // 60_000
        before = t.counts[row, max(0, onset - 120):onset]
        assert ref >= onset and t.counts[row, ref] > 10 * max(1.0, lab["baseline_views"])
        # the baseline is what the video did before: its expected views, within noise and drift
        assert before.mean() <= 3 * lab["baseline_views"] + 1 if len(before) else lab["baseline_views"] == 0
        if lab["shape"] == "upload":
            assert before.sum() == 0  # it did not exist before its onset


def test_alert_quality_counts_recall_delays_false_alerts_and_cooldown():
    labels = [{"video_id": "a", "onset_ms": 0, "ref_ms": 60_000, "end_ms": 600_000}]
    alert = {"state": "super_spike", "video_id": "a", "at": 180_000}
    noise = [{"state": "super_spike", "video_id": "b", "at": 60_000 * m} for m in (10, 20, 500)]
    q = alert_quality([alert, *noise], labels, traffic_hours=12.0, cooldown_ms=6 * 3_600_000)
    assert q["recall"] == 1.0 and q["delay_min_median"] == 3.0 and q["delay_from_10x_min_median"] == 2.0
    assert q["false_alerts"] == 2 and q["false_alerts_per_day"] == 4.0  # b's second alert is in its cooldown
    assert alert_quality(noise, labels, 12.0)["false_alerts"] == 3 and alert_quality([], labels, 1)["recall"] == 0


def test_a_news_event_clusters_the_spikes_and_lifts_the_platform():
    event = replace(SPEC, event_at_hours=2.0, event_hours=3.0, event_lift=0.5)
    t, quiet = generate_counts(event), generate_counts(SPEC)
    onsets = [(lab["onset_ms"] - t.minutes[0]) // 60_000 for lab in t.labels]
    assert sum(120 <= o < 300 for o in onsets) >= round(0.75 * len(t.labels)) > 0
    # ordinary videos (no spike in either run) an hour into the event: the lift on the same traffic
    spiked = {lab["video_id"] for lab in t.labels + quiet.labels}
    rows = [i for i, v in enumerate(t.video_ids[: SPEC.videos]) if v not in spiked]
    during, before = slice(180, 270), slice(0, 110)
    assert 1.4 < t.counts[rows, during].sum() / quiet.counts[rows, during].sum() < 1.6
    assert 0.95 < t.counts[rows, before].sum() / quiet.counts[rows, before].sum() < 1.05  # before it: none


def test_overlapping_labels_of_a_video_are_one_episode():
    labels = [{"video_id": "a", "onset_ms": 0, "ref_ms": 60_000, "end_ms": 600_000},
              {"video_id": "a", "onset_ms": 500_000, "ref_ms": 500_000, "end_ms": 900_000},  # before the first ended
              {"video_id": "a", "onset_ms": 5_000_000, "ref_ms": 5_000_000, "end_ms": 6_000_000},  # a later surge
              {"video_id": "b", "onset_ms": 500_000, "ref_ms": 500_000, "end_ms": 900_000}]
    alerts = [{"state": "super_spike", "video_id": v, "at": at} for v, at in (("a", 120_000), ("b", 560_000))]
    q = alert_quality(alerts, labels, traffic_hours=2.0)
    assert q["labelled_spikes"] == 3 and q["overlapping_labels_merged"] == 1
    assert q["detected"] == 2 and q["missed"] == ["a"] and q["false_alerts"] == 0  # the later surge of a
    assert q["delay_from_10x_min_median"] == 1.0  # a from its first label's ref, b 1 min after its own
    q = alert_quality([*alerts, {"state": "super_spike", "video_id": "a", "at": 5_100_000}], labels, 2.0)
    assert q["recall"] == 1.0


def test_a_viral_spike_doubles_from_a_64th_of_its_peak():
    t = generate_counts(replace(SPEC, shapes=("viral",)))
    assert {lab["shape"] for lab in t.labels} == {"viral"}
    for lab in t.labels:
        row = t.video_ids.index(lab["video_id"])
        onset = (lab["onset_ms"] - t.minutes[0]) // 60_000
        half = onset + int(np.argmax(t.counts[row, onset:] >= lab["peak_views"] / 2))
        # five doublings of 10 to 20 min before half the peak: not a step
        assert 50 <= half - onset <= 120, (lab, half - onset)
