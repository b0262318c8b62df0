"""jobs/jvm PartitionKeys: the update batches' keys land on the partition they are chosen for, as
Kafka's built-in partitioner places them (tests/kafka_partitioner.py, checked here against the
murmur2 values of Kafka's own unit tests)."""
from __future__ import annotations

import pytest

from tests.kafka_partitioner import kafka_partition, murmur2
from tests.unit.jvm_ops import ops


@pytest.mark.parametrize("data,signed", [(b"21", -973932308), (b"foobar", -790332482),
                                         (b"a-little-bit-long-string", -985981536),
                                         (b"a-little-bit-longer-string", -1486304829),
                                         (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
                                         (b"abc", 479470107)])
def test_the_reference_murmur2_gives_kafkas_values(data, signed):
    assert murmur2(data) == signed & 0xFFFFFFFF


def test_the_subtasks_names_alone_share_a_partition():
    # why the keys are chosen: by name, both subtasks of a 2-partition topic would write to partition 0
    assert kafka_partition("batch-0", 2) == kafka_partition("batch-1", 2) == 0


def test_each_key_lands_on_its_partition():
    keys = ops().PartitionKeys
    for partitions in range(1, 9):
        for subtask in range(12):
            key = keys.keyFor(f"batch-{subtask}", subtask % partitions, partitions)
            assert key == f"batch-{subtask}" or key.startswith(f"batch-{subtask}-")
            assert kafka_partition(key, partitions) == subtask % partitions
            assert keys.partitionOf(key, partitions) == subtask % partitions


def test_a_partition_outside_the_topic_is_refused():
    from py4j.protocol import Py4JJavaError

    with pytest.raises(Py4JJavaError, match="partition 2 of 2"):
        ops().PartitionKeys.keyFor("batch-0", 2, 2)
