"""A small PNG bar chart of an alert's recent views per interval, with the spike's onset marked.

Pure Python (zlib + struct), no plotting library: the alert must render on any machine the alerter
runs on, and the picture is simple. The chart is WIDTH x HEIGHT pixels, 8-bit RGB: one bar per
interval of `series` (oldest on the left), a dashed grey line at the video's baseline rate, and
a red vertical line at the left edge of the onset interval, the first interval the video was
rising: the one starting at `spike_started_at` (operators/spikes.py sets it to that interval's
start). When the onset is older than the series, no onset line is drawn.
"""
from __future__ import annotations

import struct
import zlib

WIDTH, HEIGHT = 320, 120
MARGIN = 4
BACKGROUND = (255, 255, 255)
BAR = (70, 130, 180)
BASELINE = (160, 160, 160)
AXIS = (90, 90, 90)
ONSET = (220, 30, 30)
ONSET_WIDTH = 2


def onset_index(series_start: int, interval_ms: int, spike_started_at: int, n: int) -> int | None:
    """Index in the series of the interval holding `spike_started_at` (the start of the first rising
    interval), or None if it is not in the series."""
    if interval_ms <= 0 or spike_started_at <= 0:
        return None
    k = (spike_started_at - series_start) // interval_ms
    return k if 0 <= k < n else None


def bar_span(k: int, n: int, width: int = WIDTH) -> tuple[int, int]:
    """Pixel columns [x0, x1) of bar k of n."""
    inner = width - 2 * MARGIN
    return MARGIN + k * inner // n, MARGIN + (k + 1) * inner // n


def render_series_png(series: list[int], onset: int | None, baseline: float | None = None,
                      width: int = WIDTH, height: int = HEIGHT) -> bytes:
    pixels = [[BACKGROUND] * width for _ in range(height)]
    top, bottom = MARGIN, height - MARGIN - 1  # bottom row is the axis
    plot_h = bottom - top
    n = len(series)
    peak = max(max(series, default=0), baseline or 0, 1)
    if n:
        for k, v in enumerate(series):
            x0, x1 = bar_span(k, n, width)
            if x1 - x0 >= 3:
                x1 -= 1  # a gap between wide bars
            h = round(max(v, 0) / peak * plot_h)
            for y in range(bottom - h, bottom):
                row = pixels[y]
                for x in range(x0, x1):
                    row[x] = BAR
    if baseline is not None and baseline > 0:
        y = bottom - round(baseline / peak * plot_h)
        for x in range(MARGIN, width - MARGIN):
            if (x // 4) % 2 == 0:
                pixels[y][x] = BASELINE
    for x in range(MARGIN, width - MARGIN):
        pixels[bottom][x] = AXIS
    if onset is not None and n:
        x0, _ = bar_span(onset, n, width)
        for y in range(top, bottom + 1):
            for x in range(x0, min(x0 + ONSET_WIDTH, width)):
                pixels[y][x] = ONSET
    return encode_png(pixels, width, height)


def alert_png(alert: dict) -> bytes:
    """The chart of an alert (or transition) dict."""
    series = list(alert.get("series") or [])
    onset = onset_index(int(alert.get("series_start") or 0), int(alert.get("interval_ms") or 0),
                        int(alert.get("spike_started_at") or 0), len(series))
    return render_series_png(series, onset, baseline=alert.get("baseline_rate"))


def encode_png(pixels: list[list[tuple[int, int, int]]], width: int, height: int) -> bytes:
    raw = bytearray()
    for row in pixels:
        raw.append(0)  # filter: none
        for r, g, b in row:
            raw += bytes((r, g, b))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
