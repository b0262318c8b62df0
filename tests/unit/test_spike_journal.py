"""The spike job's state (jobs/spikes_fn.py JournaledBook): a snapshot of the book every
SNAPSHOT_EVERY intervals and a journal of the inputs since. A book restored from the state at any
point of a run, and fed the rest, gives the same outputs and ends the same as the run that never
stopped; the whole book is written once per SNAPSHOT_EVERY intervals, not once per interval."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from jobs.spikes_fn import CORRECTION, INTERVAL, SNAPSHOT_EVERY, JournaledBook, apply_row, decode_input, encode_input
from operators.spikes import SpikeBook, SpikeRules
from tests.unit.test_spikes import intervals, platform

RULES = SpikeRules()


class ValueState:
    def __init__(self, value=None):
        self.v, self.writes = value, 0

    def value(self):
        return self.v

    def update(self, v):
        self.v, self.writes = v, self.writes + 1


class ListState:
    def __init__(self, items=()):
        self.items = list(items)

    def get(self):
        return list(self.items)

    def add(self, v):
        self.items.append(v)

    def clear(self):
        self.items = []


def input_rows(videos: int = 200) -> list[tuple]:
    """INPUT_TYPE rows: 70 intervals of a platform with a surge, a late view after some of them."""
    surge = np.zeros(70, dtype=np.int64)
    surge[40:55] = 900
    rows = []
    for k, iv in enumerate(intervals(platform(70, 3000, videos, seed=3), {"x": surge})):
        rows.append((INTERVAL, iv.start, list(iv.video_ids), iv.views.tolist(), iv.regions.tolist(),
                     iv.uploaded_at.tolist(), iv.platform_views, iv.platform_videos))
        if k % 7 == 3:  # a late view of an earlier interval (the job's corrections: one view each)
            rows.append((CORRECTION, iv.start - 60_000, [iv.video_ids[0]], [1], [1], [-1], 0, 0))
    return rows


def outputs(journaled: JournaledBook, rows) -> list:
    return [journaled.apply(row) for row in rows]


@pytest.mark.parametrize("rules", [RULES, SpikeRules(idle_ttl_ms=5 * 60_000)], ids=["default", "evicting"])
def test_a_restore_at_any_point_continues_as_the_run_that_never_stopped(rules):
    # "evicting": quiet videos leave and come back, so the run that never stopped reuses freed
    # slots where the restored book (slots renumbered) appends: the outputs must not depend on it
    rows = input_rows(2000)  # a long tail: quiet videos come and go
    whole = JournaledBook(rules, ValueState(), ListState())
    expected = outputs(whole, rows)
    assert any(t for t, _ in expected), "the surge pages: transitions are compared too"
    if rules.idle_ttl_ms < RULES.idle_ttl_ms:
        seen = {v for r in rows for v in r[2]}
        assert len(whole.book.ids) < len(seen), "evicted videos' slots were taken again"
    for cut in (1, 5, SNAPSHOT_EVERY - 1, SNAPSHOT_EVERY, SNAPSHOT_EVERY + 1, 2 * SNAPSHOT_EVERY + 3, len(rows) - 1):
        running = JournaledBook(rules, ValueState(), ListState())
        outputs(running, rows[:cut])
        # the state a checkpoint would hold at this point, handed to a new instance
        restored = JournaledBook(rules, ValueState(running.snapshot.value()), ListState(running.journal.get()))
        assert in_video_order(outputs(restored, rows[cut:])) == in_video_order(expected[cut:]), f"cut at row {cut}"
        assert by_video(restored.book) == by_video(whole.book)


def in_video_order(out: list) -> list:
    """Each input's transitions and updates by video: within one interval their order follows the
    book's slots, which a restore renumbers."""
    return [(sorted(t, key=lambda x: x["video_id"]), sorted(u, key=lambda x: x.video_id)) for t, u in out]


def by_video(book: SpikeBook) -> tuple:
    """The book's saved form, rows in video order (a restored book numbers its slots anew)."""
    table = pa.ipc.open_stream(book.to_bytes()).read_all()
    return table.schema.metadata, table.sort_by("video_id").to_pydict()


def test_the_book_is_written_once_per_snapshot_interval_and_the_journal_stays_short():
    rows = input_rows()
    state, journal = ValueState(), ListState()
    journaled = JournaledBook(RULES, state, journal)
    longest = 0
    for row in rows:
        journaled.apply(row)
        longest = max(longest, sum(1 for r in journal.items if decode_input(r)[0] == INTERVAL))
    n_intervals = sum(1 for r in rows if r[0] == INTERVAL)
    assert state.writes == n_intervals // SNAPSHOT_EVERY
    assert longest == SNAPSHOT_EVERY - 1


def test_corrections_of_a_book_saved_before_the_journal_are_applied_after_its_snapshot():
    rows = [r for r in input_rows() if r[0] == INTERVAL]
    before = JournaledBook(RULES, ValueState(), ListState())
    outputs(before, rows[:30])
    saved = before.book.to_bytes()
    video = rows[29][2][0]
    # the earlier layout: the book as of its last interval and a list of (video, interval) corrections
    legacy = ListState([(video, rows[28][1])])
    restored = JournaledBook(RULES, ValueState(saved), ListState(), legacy)
    expected = SpikeBook.from_bytes(RULES, saved)
    want = expected.correct(video, rows[28][1], 1)
    assert want is not None
    with_correction = apply_row(expected, rows[30])
    assert restored.apply(rows[30]) == with_correction
    # the check can tell: without the old list the same interval comes out otherwise
    assert JournaledBook(RULES, ValueState(saved), ListState()).apply(rows[30]) != with_correction
    # the next snapshot replaces the book and clears the old list
    for row in rows[31:31 + SNAPSHOT_EVERY]:
        restored.apply(row)
    assert legacy.items == []


def test_a_journal_entry_gives_back_its_row():
    for row in input_rows()[:5]:
        back = decode_input(encode_input(row))
        assert back[:2] == row[:2] and back[2] == row[2] and back[6:] == row[6:]
        assert all(list(b) == list(r) and b.dtype == np.int64 for b, r in zip(back[3:6], row[3:6]))


def test_a_book_saved_with_the_journal_of_input_rows_restores_and_goes_on_in_the_new_journal():
    # the previous build journalled the input rows themselves (state "spike_journal")
    rows = input_rows()
    whole = JournaledBook(RULES, ValueState(), ListState())
    expected = outputs(whole, rows)
    cut = SNAPSHOT_EVERY + 6
    running = JournaledBook(RULES, ValueState(), ListState())
    outputs(running, rows[:cut])
    old_journal = ListState(decode_input(e) for e in running.journal.get())
    assert old_journal.items, "the cut leaves rows in the journal"
    restored = JournaledBook(RULES, ValueState(running.snapshot.value()), ListState(), None, old_journal)
    # a second restore before the next snapshot: the old rows first, then the new journal's
    more = cut + 4
    assert outputs(restored, rows[cut:more]) == expected[cut:more]
    assert old_journal.items and restored.journal.items, "the second restore reads both journals"
    again_old = ListState(old_journal.get())
    again = JournaledBook(RULES, ValueState(restored.snapshot.value()), ListState(restored.journal.get()), None,
                          again_old)
    assert in_video_order(outputs(again, rows[more:])) == in_video_order(expected[more:])
    assert by_video(again.book) == by_video(whole.book)
    assert again_old.items == [], "the next snapshot clears the old journal"
    # without the old rows the continuation differs: the test can fail
    lost = JournaledBook(RULES, ValueState(running.snapshot.value()), ListState())
    assert outputs(lost, rows[cut:more]) != expected[cut:more]


def test_a_snapshot_is_compressed_and_a_plain_one_of_an_earlier_build_still_restores():
    book = JournaledBook(RULES, ValueState(), ListState())
    outputs(book, input_rows(2000)[:30])
    saved = book.book.to_bytes()
    table = pa.ipc.open_stream(saved).read_all()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:  # what builds before compression wrote
        writer.write_table(table)
    plain = sink.getvalue().to_pybytes()
    assert len(saved) < len(plain) / 2
    assert by_video(SpikeBook.from_bytes(RULES, plain)) == by_video(SpikeBook.from_bytes(RULES, saved)) == by_video(book.book)
