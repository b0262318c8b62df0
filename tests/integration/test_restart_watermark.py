"""A view behind the watermark that reaches the combined job right after a restart from a checkpoint
is counted by every family. Flink's window aggregations restore the watermark they had reached,
while the watermark a restarted source derives starts again from nothing: a view routed on the
source's watermark alone would go into a window that has already closed, and the window drops it
without a trace (the CI failure of test_hard_kill_and_restart_from_checkpoint: one view short)."""
from __future__ import annotations

import signal

import orjson
import pytest
from confluent_kafka import Producer

from featurestore import layout
from jobs.flink_env import latest_checkpoint
from operators.feature_groups import groups_for
from schemas.features import REGION_TRENDS, VIDEO_ENGAGEMENT, VIDEO_SPIKES
from tests.conftest import kill_group, start_fyp, wait_for
from tests.integration import replay_support as replay
from tests.integration.engagement_support import send_sentinels

pytestmark = [pytest.mark.integration, pytest.mark.long]

T0 = 1_795_996_800_000  # on a minute


def _view(video: str, event_time: int, user: str) -> bytes:
    return orjson.dumps({"event_id": f"{video}-{event_time}-{user}", "user_id": user, "video_id": video,
                         "event_time": event_time, "region": "US", "watch_time_ms": 4000,
                         "video_duration_ms": 10000, "liked": True, "shared": False, "commented": False,
                         "skipped": False})


def _produce(bootstrap: str, topic: str, records: list[tuple[int, bytes]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for partition, payload in records:
        p.produce(topic, payload, partition=partition)
    assert p.flush(30) == 0


def _views_taken_in(client, cfg) -> dict:
    """v-early's views as each family has taken them in: its engagement and spike versions' `_n`,
    its entry in the US trend lists."""
    def absorbed(group):
        stored = layout.decode_row(groups_for(cfg)[group], client.get(layout.entity_key(group, "v-early")))
        return stored and stored[2]

    trends = replay.stored_group(cfg, client, REGION_TRENDS).get("US")
    listed = [item["views"] for name, items in (trends[1].items() if trends else ())
              if name.startswith("top_") for item in items if item["video"] == "v-early"]
    return {"engagement": absorbed(VIDEO_ENGAGEMENT), "spikes": absorbed(VIDEO_SPIKES),
            "trends": max(listed, default=None)}


def _wait_taken_in(client, cfg, views: int, timeout: float) -> None:
    seen = {}

    def every_family():
        seen.update(_views_taken_in(client, cfg))
        return set(seen.values()) == {views}

    try:
        wait_for(every_family, timeout, f"{views} views of v-early in every family")
    except AssertionError as failure:
        raise AssertionError(f"{failure}; taken in: {seen}") from None


# Each topic's partitions, and the source idle timeout. With one partition and parallelism 2, one
# source subtask has no partition: it goes idle after the timeout (without one the job would not
# start: jobs/source_partitions.py), saves no watermark floor, and must not hold the floor down.
# There the stream falls silent once the sentinels are read and goes idle before the uploads
# source (no upload here; idle after `enrichment.metadata_wait`): the metadata join must then move
# on to the views' watermark (jobs/jvm AsOfUploadJoin), or the spike family waits for the next event;
# and the checkpoint is taken with every source subtask idle, so the floor must come from the
# watermark they sent before going idle, or the view after the restart is lost in every family.
LAYOUTS = {"two-partitions": {},
           "one-partition-idle-source": {"kafka.partitions": 1, "flink.source_idle_timeout": "2s"}}


@pytest.mark.parametrize("layout_name", LAYOUTS)
def test_view_behind_the_restored_watermark_counts_in_every_family(stack, tmp_path, layout_name):
    cfg, path = stack.config("restart-watermark", **{"engagement.allowed_lateness": "1h"}, **LAYOUTS[layout_name])
    topic, partitions = cfg.kafka.topics.engagement, cfg.kafka.partitions
    client = stack.redis(cfg)
    _produce(stack.bootstrap, topic, [(0, _view("v-early", T0 + 100, "u1")),
                                      (1 % partitions, _view("v-early", T0 + 200, "u2"))])
    send_sentinels(stack.bootstrap, topic, T0 + 300_000, partitions)  # the watermark goes 5 min past the views

    first = start_fyp(path, "run", "features", "--fresh", log=tmp_path / "run1.log")
    try:
        # the views' step, minute and spike interval have closed in every window aggregation: their
        # watermarks are past T0 + 1 min ...
        _wait_taken_in(client, cfg, 2, 180)
        # ... and a checkpoint taken after that holds them
        before = latest_checkpoint(cfg.checkpoint_dir / "features")
        wait_for(lambda: latest_checkpoint(cfg.checkpoint_dir / "features") not in (None, before), 60,
                 "a checkpoint after the windows closed")
    finally:
        kill_group(first, signal.SIGKILL)

    # behind the watermark the windows had reached, within the allowed lateness: a correction
    _produce(stack.bootstrap, topic, [(0, _view("v-early", T0 + 500, "u3"))])
    second = start_fyp(path, "run", "features", log=tmp_path / "run2.log")
    try:
        send_sentinels(stack.bootstrap, topic, T0 + 310_000, partitions)
        _wait_taken_in(client, cfg, 3, 120)
        assert replay.stored_group(cfg, client, VIDEO_ENGAGEMENT)["v-early"][1]["views_1h"] == 3
    finally:
        kill_group(second, signal.SIGTERM)
    assert "from checkpoint" in (tmp_path / "run2.log").read_text()
