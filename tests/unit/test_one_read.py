"""Each job reads each of its inputs once: one source per topic (or file), whatever number of
queries read it. A second source of the same input decides on a watermark of its own and costs a
second read and parse (the combined job read the uploads twice, for the metadata join and for
the dead letters, until the uploads went through front.single_stream too)."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from jobs import engagement, features, interests, milestones, spikes, trends
from settings.config import load_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SCAN = re.compile(r"TableSourceScan\(table=\[\[default_catalog, default_database, (\w+)")


def sources(handle) -> Counter:
    """The catalog tables the job's source nodes scan, with how many nodes scan each."""
    plan = json.loads(handle.env.get_execution_plan())
    return Counter(m.group(1) for n in plan["nodes"] for m in [SCAN.search(n["contents"])] if m)


@pytest.mark.parametrize("job", [features, engagement, interests, trends, milestones, spikes],
                         ids=lambda j: j.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("mode", ["kafka", "files"])
def test_every_input_is_read_by_one_source(job, mode, tmp_path, monkeypatch):
    cfg = load_config(env={})
    monkeypatch.setattr("jobs.source_partitions.check", lambda cfg, topics: None)  # no broker here
    reads_uploads = job is features or job.NEEDS.metadata
    files = {}
    if mode == "files":
        (tmp_path / "events.jsonl").write_text("")
        files["input_file"] = str(tmp_path / "events.jsonl")
        if reads_uploads:
            (tmp_path / "uploads.jsonl").write_text("")
            files["uploads_file"] = str(tmp_path / "uploads.jsonl")
    counts = sources(job.build(cfg, **files))
    assert set(counts) == {"engagement_raw"} | ({"uploads_raw"} if reads_uploads else set())
    assert all(n == 1 for n in counts.values()), f"an input read by more than one source: {dict(counts)}"
