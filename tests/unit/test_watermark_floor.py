"""WatermarkFloor's floor after a restore (jobs/jvm): the lowest watermark its subtasks had sent on,
where a subtask that had sent none does not count (a source subtask without a partition is idle,
and the windows behind skip it too)."""
from __future__ import annotations

from tests.unit.jvm_ops import ops

MIN = -(2 ** 63)
T = 1_795_996_800_000  # epoch milliseconds: py4j hands them over as Long


def _floor(saved):
    from pyflink.java_gateway import get_gateway

    entries = get_gateway().jvm.java.util.ArrayList()
    for w in saved:
        entries.add(w)
    return ops().WatermarkFloor.restoredFloor(entries)


def test_the_floor_is_the_lowest_watermark_sent_on():
    assert _floor([T + 1_000, T + 700, T + 900]) == T + 700


def test_a_subtask_that_sent_none_does_not_hold_the_floor_down():
    assert _floor([T + 1_000, MIN, T + 900]) == T + 900


def test_no_floor_when_none_was_saved():
    assert _floor([]) == MIN
    assert _floor([MIN, MIN]) == MIN
