"""The alert plot is a valid PNG (checked by hand: signature, chunk CRCs, IHDR, zlib data of the
right size) with the onset column in the marker colour."""
from __future__ import annotations

import struct
import zlib

from services.alerts.plot import BAR, HEIGHT, ONSET, WIDTH, alert_png, bar_span, onset_index


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(png):
        (n,) = struct.unpack(">I", png[i:i + 4])
        kind, data = png[i + 4:i + 8], png[i + 8:i + 8 + n]
        (crc,) = struct.unpack(">I", png[i + 8 + n:i + 12 + n])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, f"bad CRC in {kind}"
        out.append((kind, data))
        i += 12 + n
    assert i == len(png)
    return out


def _decode(png: bytes) -> list[list[tuple[int, int, int]]]:
    chunks = _chunks(png)
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    w, h, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, comp, filt, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    assert len(raw) == h * (1 + 3 * w)
    rows = []
    for y in range(h):
        line = raw[y * (1 + 3 * w):(y + 1) * (1 + 3 * w)]
        assert line[0] == 0
        rows.append([tuple(line[1 + 3 * x:4 + 3 * x]) for x in range(w)])
    return rows


def _alert(series, onset_k, interval=60_000, start=1_700_000_000_000):
    return {"series": series, "series_start": start, "interval_ms": interval, "baseline_rate": 5.0,
            "spike_started_at": start + onset_k * interval, "at": start + len(series) * interval}


def test_png_is_valid_and_marks_the_onset():
    series = [5] * 100 + [30, 80, 200, 600, 900] + [1200] * 15
    png = alert_png(_alert(series, onset_k=100))
    rows = _decode(png)
    assert len(rows) == HEIGHT and len(rows[0]) == WIDTH
    x0, _ = bar_span(100, len(series))
    column = [rows[y][x0] for y in range(HEIGHT)]
    assert column.count(ONSET) > HEIGHT // 2  # a vertical line in the marker colour
    assert sum(row.count(ONSET) for row in rows) == column.count(ONSET) * 2  # 2 px wide, nowhere else
    # the tallest bar reaches near the top, a calm one stays low
    tall_x = bar_span(119, len(series))[0]
    assert rows[6][tall_x] == BAR
    calm_x = bar_span(10, len(series))[0]
    assert rows[HEIGHT // 2][calm_x] != BAR


def test_onset_index_is_the_first_rising_interval():
    start, iv = 1_000_000, 60_000  # spike_started_at = the start of the first rising interval
    assert onset_index(start, iv, start, 10) == 0
    assert onset_index(start, iv, start + 9 * iv, 10) == 9
    assert onset_index(start, iv, start + 10 * iv, 10) is None  # after the series
    assert onset_index(start, iv, start - iv, 10) is None  # began before the series
    assert onset_index(start, iv, 0, 10) is None  # not spiking
    png = alert_png(_alert([1, 2, 3], onset_k=-5))
    assert all(ONSET not in row for row in _decode(png))


def test_empty_and_flat_series_still_render():
    for series in ([], [0, 0, 0], [7]):
        rows = _decode(alert_png(_alert(series, onset_k=0)))
        assert len(rows) == HEIGHT


def test_a_real_spike_transition_plots_its_onset():
    """Against the spike job's own per-video logic (operators/spikes.py), not a hand-made transition."""
    from services.alerts.alert import build_alert, enters_super_spike
    from services.alerts.payloads import alertmanager_payload, plain_payload, slack_payload
    import numpy as np

    from operators.spikes import Interval, SpikeRules, replay

    rules = SpikeRules()
    start = 1_794_000_000_000
    views = [3, 5, 4, 6, 2, 5, 4, 3, 5, 4] * 6 + [60, 400, 900, 1500]
    others = [f"o{i}" for i in range(50)]  # the rest of the platform: 50 videos at 10 views a minute
    intervals = [Interval(start + i * rules.interval_ms, others + ["real"], np.array([10] * 50 + [v]),
                          np.array([1] * 50 + [4]), np.full(51, start - 86_400_000), 500 + v, 51)
                 for i, v in enumerate(views)]
    transitions, _, _ = replay(intervals, rules)
    into = [t for t in transitions if enters_super_spike(t)]
    assert into, f"no super-spike in {[(t['previous_state'], t['state']) for t in transitions]}"
    t = into[0]
    alert = build_alert(t, "critical", "https://example.org/rb", "")
    rows = _decode(alert_png(alert))
    k = onset_index(t["series_start"], t["interval_ms"], t["spike_started_at"], len(t["series"]))
    assert k is not None and t["series"][k] == views[(t["spike_started_at"] - start) // rules.interval_ms]
    x0, _ = bar_span(k, len(t["series"]))
    assert rows[HEIGHT // 2][x0] == ONSET
    for payload in (plain_payload(alert), slack_payload(alert), alertmanager_payload(alert)):
        assert payload
