"""WatermarkFloor's floor after a restore (jobs/jvm): the lowest watermark its subtasks had sent on,
as a window behind them computes its own; a subtask whose input was idle (a source subtask without
a partition) saves none, as the window skips an idle input."""
from __future__ import annotations

from tests.unit.jvm_ops import ops

MIN = -(2 ** 63)
T = 1_795_996_800_000  # epoch milliseconds: py4j hands them over as Long


def _restored(*subtasks):
    """The floor restored from subtasks that saved at a checkpoint: (watermark sent on, idle)."""
    from pyflink.java_gateway import get_gateway

    entries = get_gateway().jvm.java.util.ArrayList()
    for sent, idle in subtasks:
        entries.addAll(ops().WatermarkFloor.toSave(sent, idle))
    return ops().WatermarkFloor.restoredFloor(entries)


def test_the_floor_is_the_lowest_watermark_sent_on():
    assert _restored((T + 1_000, False), (T + 700, False), (T + 900, False)) == T + 700


def test_an_idle_subtask_does_not_hold_the_floor_down():
    assert _restored((T + 1_000, False), (MIN, True), (T + 400, True), (T + 900, False)) == T + 900


def test_an_active_subtask_without_a_watermark_leaves_no_floor():
    # the window behind has no watermark either: every event may still go into its windows
    assert _restored((T + 1_000, False), (MIN, False)) == MIN


def test_no_floor_when_none_was_saved():
    assert _restored() == MIN
    assert _restored((T, True)) == MIN
