"""jobs/jvm UpdateBatches in a Flink job of its own: feature updates packed into records of many,
nothing lost, repeated or reordered, no record beyond its size in bytes but by its last update,
ids beyond ASCII kept as UTF-8, and what is buffered at the end of the input sent (the job's own
operators feed it in the other tests)."""
from __future__ import annotations

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_updates_leave_in_batches_in_their_order_and_the_last_at_the_end_of_input(tmp_path):
    from pyflink.common.typeinfo import Types

    from jobs.flink_env import create_environments
    from jobs.keyed import jvm_with_jars, update_batches
    from tests.kafka_partitioner import kafka_partition
    from stack.artifacts import ensure_all, job_jars
    from settings.config import load_config

    cfg = load_config(None, {"flink.parallelism": 1})
    ensure_all(cfg.artifacts_dir)  # the job's jar, rebuilt from the current sources
    env, _ = create_environments(cfg, "update-batches-test", streaming_checkpoints=False)
    jvm_with_jars(job_jars(cfg.artifacts_dir))  # as a job's driver has them once its SQL ran
    updates = [{"g": "video_engagement", "id": f"v{i % 37}" + ("-é✓" if i % 5 == 0 else ""), "t": 1000 * i,
                "n": i, "v": [i, i / 7]} for i in range(1000)]
    rows = [(u["id"], orjson.dumps(u).decode()) for u in updates]
    source = env.from_collection(rows, type_info=Types.ROW_NAMED(["entity_id", "payload"],
                                                                 [Types.STRING(), Types.STRING()]))
    max_bytes = 2000
    batches = update_batches(source, max_bytes, 10_000, 3, "batches")
    # the payload, a Java byte[], is collected as a list of signed bytes
    got = [(r[0], bytes(b & 0xFF for b in r[1])) for r in batches.execute_and_collect()]

    # one key, the subtask's, on partition 0 of the 3
    keys = {key for key, _ in got}
    assert len(got) > 1 and len(keys) == 1 and kafka_partition(keys.pop(), 3) == 0
    for _, payload in got:
        items = orjson.loads(payload)
        # a record closes with the update that took it to max_bytes or beyond
        assert len(payload) - len(orjson.dumps(items[-1])) - 2 < max_bytes
    assert [u for _, payload in got for u in orjson.loads(payload)] == updates
