"""The views' upload metadata (jobs/jvm AsOfUploadJoin through the shared front, a bounded run over
files) against an as-of lookup in Python: each valid view gets the upload with the newest upload
time at or before its event time, '' and -1 before its video's first upload or without one, and
no view is lost or repeated; a re-uploaded video's views between its two uploads keep the first
upload's metadata."""
from __future__ import annotations

import bisect
import json
import random
import subprocess
import sys

import pytest

from settings.config import REPO_ROOT

pytestmark = pytest.mark.integration

T0 = 1_790_000_000_000

PROBE = """
import json, sys
from settings.config import load_config
from jobs import front
cfg = load_config(sys.argv[1], env={})
events, uploads = sys.argv[2], sys.argv[3]
job = front.new_job(cfg, "join-probe", events)
front.prepare(cfg, job, "join-probe", [front.Needs(metadata=True, updates=False)], events, uploads)
rows = job.t_env.sql_query(f"SELECT event_id, category, creator_id, upload_time FROM {front.ENRICHED_VIEW}")
with rows.execute().collect() as results:
    for r in results:
        print(json.dumps([r[0], r[1], r[2], r[3]]))
"""


def _view(i: int, video: str, t: int) -> dict:
    return {"event_id": f"e{i}", "user_id": f"u{i % 11}", "video_id": video, "event_time": t, "region": "US",
            "watch_time_ms": 1000, "video_duration_ms": 30_000, "liked": False, "shared": False,
            "commented": False, "skipped": False}


def _upload(video: str, t: int, category: str, creator: str) -> dict:
    return {"video_id": video, "creator_id": creator, "category": category, "video_duration_ms": 30_000,
            "region": "US", "upload_time": t}


def test_each_view_gets_the_newest_upload_at_or_before_its_time(stack, tmp_path):
    cfg, path = stack.config("metadata-join")
    rng = random.Random(5)
    # sorted by upload time: no upload is late against the uploads' watermark
    uploads = sorted([
        _upload("v1", T0 + 10_000, "music", "c1"),
        _upload("v1", T0 + 100_000, "comedy", "c2"),  # a re-upload: views from 100 s on get it
        _upload("v2", T0 + 50_000, "sports", "c3"),
        _upload("v4", T0 + 200_000, "food", "c4"),  # views before 200 s: unknown
        _upload("v5", T0 + 5_000, "news", "c5"),
        _upload("v5", T0 + 5_000, "news", "c6"),  # same time, same line order: the later one counts
        _upload("v9", T0 + 1_000, "pets", "c9"),  # a video nobody views
    ], key=lambda u: u["upload_time"])
    # uploads of videos nobody views, across the views' whole span: the uploads input is read
    # beside the views, its watermark rising as it goes, so views meet each way of leaving the
    # join (at once; waiting for the watermark; waiting, then let go with a later view of theirs)
    uploads = sorted(uploads + [_upload(f"w{i}", T0 + i * 20, "other", "cw") for i in range(20_000)],
                     key=lambda u: u["upload_time"])
    # views in time order with disorder well inside the watermark's bound: none is late
    at = [(rng.choice(["v1", "v2", "v3", "v4", "v5"]), T0 + rng.randrange(0, 400_000)) for _ in range(3000)]
    # exactly at an upload, and a millisecond before one
    at += [("v1", T0 + 10_000), ("v1", T0 + 99_999), ("v1", T0 + 100_000), ("v4", T0 + 200_000), ("v5", T0 + 5_000)]
    views = [_view(i, video, t) for i, (video, t) in enumerate(sorted(at, key=lambda a: a[1]))]
    events = tmp_path / "events.jsonl"
    upl = tmp_path / "uploads.jsonl"
    events.write_text("".join(json.dumps(v) + "\n" for v in views) + "not json\n")
    upl.write_text("".join(json.dumps(u) + "\n" for u in uploads))

    out = subprocess.run([sys.executable, "-c", PROBE, str(path), str(events), str(upl)], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("[")]

    versions: dict[str, list] = {}
    for u in uploads:  # in file order: of two at the same time, the later line wins
        vs = versions.setdefault(u["video_id"], [])
        at = bisect.bisect_right([x[0] for x in vs], u["upload_time"])
        if at and vs[at - 1][0] == u["upload_time"]:
            vs[at - 1] = (u["upload_time"], u)
        else:
            vs.insert(at, (u["upload_time"], u))

    def as_of(view):
        vs = versions.get(view["video_id"], [])
        at = bisect.bisect_right([x[0] for x in vs], view["event_time"])
        if not at:
            return ["", "", -1]
        u = vs[at - 1][1]
        return [u["category"], u["creator_id"], u["upload_time"]]

    expected = {v["event_id"]: as_of(v) for v in views}
    assert sorted(r[0] for r in got) == sorted(expected), "views lost or repeated"
    wrong = [(r, expected[r[0]]) for r in got if r[1:] != expected[r[0]]]
    assert not wrong, f"{len(wrong)} of {len(got)} views with other metadata than as of their time: {wrong[:5]}"
    # the cases the data was made for did occur
    by_id = {r[0]: r[1:] for r in got}
    seen = {(v["video_id"], tuple(by_id[v["event_id"]])) for v in views}
    assert ("v1", ("music", "c1", T0 + 10_000)) in seen and ("v1", ("comedy", "c2", T0 + 100_000)) in seen
    assert ("v4", ("", "", -1)) in seen and ("v4", ("food", "c4", T0 + 200_000)) in seen
    assert ("v5", ("news", "c6", T0 + 5_000)) in seen and ("v3", ("", "", -1)) in seen
