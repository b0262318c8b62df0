"""WatermarkFloor's floor after a restore (jobs/jvm), as a window behind its subtasks computes its
own watermark: the lowest its active subtasks had sent on, skipping idle ones (a source subtask
without a partition); when every one was idle (a silent stream), the highest any had sent."""
from __future__ import annotations

from tests.unit.jvm_ops import ops

MIN = -(2 ** 63)
T = 1_795_996_800_000  # epoch milliseconds: py4j hands them over as Long


def _restored(*subtasks):
    """The floor restored from subtasks that saved at a checkpoint: (watermark sent on, idle)."""
    from pyflink.java_gateway import get_gateway

    active, idle_ones = get_gateway().jvm.java.util.ArrayList(), get_gateway().jvm.java.util.ArrayList()
    for sent, idle in subtasks:
        active.addAll(ops().WatermarkFloor.toSave(sent, idle))
        idle_ones.addAll(ops().WatermarkFloor.toSaveIdle(sent, idle))
    return ops().WatermarkFloor.restoredFloor(active, idle_ones)


def test_the_floor_is_the_lowest_watermark_sent_on():
    assert _restored((T + 1_000, False), (T + 700, False), (T + 900, False)) == T + 700


def test_an_idle_subtask_does_not_hold_the_floor_down():
    assert _restored((T + 1_000, False), (MIN, True), (T + 400, True), (T + 900, False)) == T + 900


def test_an_active_subtask_without_a_watermark_leaves_no_floor():
    # the window behind has no watermark either: every event may still go into its windows
    assert _restored((T + 1_000, False), (MIN, False)) == MIN


def test_when_every_subtask_was_idle_the_floor_is_the_highest_sent_on():
    # a stream that fell silent: the windows behind went on to the highest (Flink's valve)
    assert _restored((T + 400, True), (T + 900, True), (MIN, True)) == T + 900
    assert _restored((T, True)) == T


def test_no_floor_when_none_was_sent_on():
    assert _restored() == MIN
    assert _restored((MIN, True), (MIN, True)) == MIN


def test_a_checkpoint_from_before_the_idle_entries_restores_as_it_did():
    from pyflink.java_gateway import get_gateway

    active, none = get_gateway().jvm.java.util.ArrayList(), get_gateway().jvm.java.util.ArrayList()
    active.add(T + 700)
    assert ops().WatermarkFloor.restoredFloor(active, none) == T + 700
    assert ops().WatermarkFloor.restoredFloor(none, none) == MIN
