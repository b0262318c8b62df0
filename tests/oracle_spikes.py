"""Independent batch computation of the spike job's input and outputs: per (video, interval) view
counts, distinct regions and upload times (as of each view) straight from the generated events
with pandas, the platform's totals per interval, then the same book code (operators/spikes.py)
stepped interval by interval. The job gets its counts from two levels of Flink SQL windows over
the parsed and joined stream; equality of the two checks the job's windowing, batching, join,
state and output."""
from __future__ import annotations

import numpy as np
import pandas as pd

from operators import spikes
from operators.spikes import UNKNOWN_UPLOAD, Interval, SpikeRules


def intervals(events, uploads: list[dict], interval_ms: int) -> list[Interval]:
    """events: valid engagement events on time (dicts, None for a malformed one, or a DataFrame);
    uploads: upload dicts. One Interval per interval with views, in order."""
    df = events if isinstance(events, pd.DataFrame) else pd.DataFrame([e for e in events if e is not None])
    df = df.sort_values("event_time", kind="stable")
    up = pd.DataFrame(uploads or [], columns=["video_id", "upload_time"]).sort_values("upload_time", kind="stable")
    df = pd.merge_asof(df, up[["video_id", "upload_time"]].astype({"upload_time": "int64"}), left_on="event_time",
                       right_on="upload_time", by="video_id", direction="backward")
    df["upload_time"] = df["upload_time"].fillna(UNKNOWN_UPLOAD).astype("int64")
    df["interval_start"] = df["event_time"] - df["event_time"] % interval_ms
    g = df.groupby(["interval_start", "video_id"])
    counts = pd.DataFrame({"views": g.size(), "regions": g["region"].nunique(),
                           "uploaded_at": g["upload_time"].max()}).reset_index()
    out = []
    for start, rows in counts.groupby("interval_start", sort=True):
        rows = rows.sort_values("video_id")
        out.append(Interval(int(start), rows["video_id"].tolist(), rows["views"].to_numpy(np.int64),
                            rows["regions"].to_numpy(np.int64), rows["uploaded_at"].to_numpy(np.int64),
                            int(rows["views"].sum()), len(rows)))
    return out


def replay(events, uploads: list[dict], rules: SpikeRules):
    """(transitions, the last feature update per video) of the book over the pandas intervals."""
    transitions, last, _ = spikes.replay(intervals(events, uploads, rules.interval_ms), rules)
    return transitions, last
