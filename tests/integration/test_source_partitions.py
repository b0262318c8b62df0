"""A streaming job refuses topics with fewer partitions than its parallelism (jobs/source_partitions.py):
such a job would run and write nothing, as a source subtask without a partition sends no watermark."""
from __future__ import annotations

import subprocess

import pytest

from settings.config import REPO_ROOT, load_config
from tests.conftest import fyp_command

pytestmark = pytest.mark.integration


def test_check_names_the_topic_short_of_partitions_unless_sources_may_go_idle(stack):
    from jobs.source_partitions import SourcePartitionsError, check, partition_counts

    cfg, path = stack.config("partitions-one", **{"kafka.partitions": 1})  # every topic 1 partition
    topics = [cfg.kafka.topics.engagement, cfg.kafka.topics.uploads]
    assert partition_counts(cfg, topics) == {t: 1 for t in topics}
    with pytest.raises(SourcePartitionsError) as e:
        check(cfg, topics)
    assert f"{cfg.kafka.topics.engagement!r} has 1" in str(e.value) and "at most 1" in str(e.value)

    check(load_config(path, {"flink.source_idle_timeout": "2s"}, env={}), topics)  # idle: no error
    check(load_config(path, {"flink.parallelism": 1}, env={}), topics)
    check(cfg, [f"{cfg.kafka.topics.engagement}-never-created"])  # not described: not checked

    ok, _ = stack.config("partitions-two")  # 2 partitions, parallelism 2
    check(ok, [ok.kafka.topics.engagement, ok.kafka.topics.uploads])


def test_fyp_run_refuses_to_start_and_says_what_to_change(stack):
    _, path = stack.config("partitions-run", **{"kafka.partitions": 1})
    done = subprocess.run(fyp_command(path, "run", "engagement", "--fresh"), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode != 0
    assert "flink.parallelism is 2" in done.stderr and "flink.source_idle_timeout" in done.stderr
