"""The Python step of the spike job: one call per interval of the whole platform (and one per late
view), never per video. A thin wrapper around operators.spikes.SpikeBook, whose state is kept in
Flink as a snapshot and a journal (declared types, not pickled objects):
- the snapshot: the whole book as Arrow IPC bytes, rewritten every SNAPSHOT_EVERY intervals;
- the journal: every input since the snapshot (intervals and late views, in order), one list entry
  each, as Arrow IPC bytes (through PyFlink's row coder, writing an interval's arrays took about a
  sixth of the time of its step). A restore takes the snapshot and steps the journal again
  (step is a function of the book and the input, so the book ends as it was); the outputs of those
  steps went out before the checkpoint and are not sent again.
Rewriting the whole book every interval cost more than the rest of the step together: at 34K
tracked videos 38 ms of `to_bytes` for a 22 MB blob, then its trip to the JVM's state, against 12 ms
of `step` (measured on the spike bench's 6 h of intervals).

The input is keyed by one constant, so one task holds the book; its input rate is the number of
intervals (one a minute in event time), whatever the platform's size.
"""
from __future__ import annotations

import os
from itertools import chain

import numpy as np
import orjson
import pyarrow as pa
from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from featurestore.updates import encode_group_records
from operators.spikes import Interval, SpikeBook, SpikeRules
from schemas.features import VIDEO_SPIKES

KIND_UPDATE, KIND_TRANSITION = "update", "transition"
UPDATES_KEY = "spike-book"  # the Kafka key of the book's update records
INTERVAL, CORRECTION = "interval", "correction"
_LONGS = Types.OBJECT_ARRAY(Types.LONG())
INPUT_TYPE = Types.ROW_NAMED(
    ["kind", "interval_start", "video_ids", "n_views", "regions", "uploaded_at", "platform_views", "platform_videos"],
    [Types.STRING(), Types.LONG(), Types.OBJECT_ARRAY(Types.STRING()), _LONGS, _LONGS, _LONGS, Types.LONG(),
     Types.LONG()])
# State of earlier builds, read on restore (after the snapshot, in this order) and never written:
# the corrections list of books before the journal, and the journal of input rows before it held
# Arrow bytes. The next snapshot clears them.
LEGACY_CORRECTIONS_TYPE = Types.ROW_NAMED(["video_id", "interval_start"], [Types.STRING(), Types.LONG()])
# A restore replays at most this many intervals (about 12 ms each at 34K videos); rewriting the book
# costs about three intervals' steps.
SNAPSHOT_EVERY = 20
OUTPUT_TYPE = Types.ROW_NAMED(["kind", "entity_id", "payload"], [Types.STRING(), Types.STRING(), Types.STRING()])


def lower_priority(nice: int) -> None:
    """Every thread of this process at `nice` (on Linux a nice value belongs to a thread; threads
    started later inherit their creator's)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except (OSError, ValueError):
            pass  # the thread has ended


_JOURNAL_COLUMNS = ("video_ids", "n_views", "regions", "uploaded_at")  # INPUT_TYPE's arrays


def encode_input(row) -> bytes:
    """An input row (INPUT_TYPE) as a journal entry: its arrays as the columns of one Arrow record
    batch, its scalars in the schema's metadata."""
    kind, start, ids, views, regions, uploaded, platform_views, platform_videos = row
    batch = pa.record_batch(
        [pa.array(list(ids), pa.string()), *(pa.array(np.asarray(c, dtype=np.int64)) for c in (views, regions, uploaded))],
        names=list(_JOURNAL_COLUMNS))
    batch = batch.replace_schema_metadata({"kind": kind, "start": str(start), "platform_views": str(platform_views),
                                           "platform_videos": str(platform_videos)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode_input(entry: bytes) -> tuple:
    """encode_input's row back (arrays as numpy arrays, ids as a list)."""
    batch = pa.ipc.open_stream(entry).read_next_batch()
    meta = {k.decode(): v.decode() for k, v in batch.schema.metadata.items()}
    ids, *ints = (batch.column(i) for i in range(len(_JOURNAL_COLUMNS)))
    return (meta["kind"], int(meta["start"]), ids.to_pylist(), *(c.to_numpy() for c in ints),
            int(meta["platform_views"]), int(meta["platform_videos"]))


class JournaledBook:
    """A SpikeBook with its Flink state: `snapshot` (a ValueState of bytes) and `journal` (a
    ListState of encode_input entries); the state handles need only value/update and get/add/clear.
    `legacy_corrections` and `legacy_journal`: the state of earlier builds (see
    LEGACY_CORRECTIONS_TYPE), read after the snapshot and cleared with the journal."""

    def __init__(self, rules: SpikeRules, snapshot, journal, legacy_corrections=None, legacy_journal=None):
        self.rules, self.snapshot, self.journal = rules, snapshot, journal
        self.legacy_corrections, self.legacy_journal = legacy_corrections, legacy_journal
        self.legacy = [s for s in (legacy_corrections, legacy_journal) if s is not None]
        self.book: SpikeBook | None = None
        self.since_snapshot = 0  # intervals in the journal

    def apply(self, row) -> tuple[list[dict], list]:
        """One input row (INPUT_TYPE): (transitions, feature updates)."""
        if self.book is None:
            self.book = self.restore()
        transitions, updates = apply_row(self.book, row)
        if row[0] == CORRECTION:
            self.journal.add(encode_input(row))
        elif self.since_snapshot + 1 >= SNAPSHOT_EVERY:
            self.snapshot.update(self.book.to_bytes())
            self.journal.clear()
            for state in self.legacy:
                state.clear()
            self.since_snapshot = 0
        else:
            self.journal.add(encode_input(row))
            self.since_snapshot += 1
        return transitions, updates

    def restore(self) -> SpikeBook:
        saved = self.snapshot.value()
        book = SpikeBook(self.rules) if saved is None else SpikeBook.from_bytes(self.rules, bytes(saved))
        for video_id, start in (self.legacy_corrections.get() if self.legacy_corrections is not None else None) or ():
            book.correct(video_id, start, 1)
        self.since_snapshot = 0
        old_rows = (self.legacy_journal.get() if self.legacy_journal is not None else None) or ()
        for row in chain(old_rows, map(decode_input, self.journal.get() or ())):
            apply_row(book, row)
            self.since_snapshot += row[0] != CORRECTION
        return book


def apply_row(book: SpikeBook, row) -> tuple[list[dict], list]:
    kind, start, ids = row[0], row[1], list(row[2])
    if kind == CORRECTION:
        return [], [u for v in ids if (u := book.correct(v, start, 1)) is not None]
    return book.step(Interval(start, ids, np.asarray(row[3], dtype=np.int64), np.asarray(row[4], dtype=np.int64),
                              np.asarray(row[5], dtype=np.int64), int(row[6]), int(row[7])))


class SpikeBookFunction(KeyedProcessFunction):
    """Input rows: (kind, interval_start, video_ids, views, regions, uploaded_at, platform_views,
    platform_videos); a correction has one video and zero platform totals."""

    def __init__(self, rules: SpikeRules, nice: int = 0):
        self.rules = rules
        self.nice = nice  # the worker process's nice value, set in open() (0: unchanged)
        self.journaled: JournaledBook | None = None
        self.metrics = {}

    def open(self, runtime_context: RuntimeContext):
        if self.nice:
            lower_priority(self.nice)
        self.journaled = JournaledBook(
            self.rules,
            runtime_context.get_state(ValueStateDescriptor("spike_book", Types.PRIMITIVE_ARRAY(Types.BYTE()))),
            runtime_context.get_list_state(ListStateDescriptor("spike_journal_arrow", Types.PRIMITIVE_ARRAY(Types.BYTE()))),
            runtime_context.get_list_state(ListStateDescriptor("spike_corrections", LEGACY_CORRECTIONS_TYPE)),
            runtime_context.get_list_state(ListStateDescriptor("spike_journal", INPUT_TYPE)))
        group = runtime_context.get_metrics_group()
        # feature_updates: as UpdateBatches counts the JVM operators' (fyp_job_feature_updates_total)
        self.metrics = {name: group.counter(name)
                        for name in ("intervals", "video_minutes", "transitions", "feature_updates")}
        group.gauge("videos_tracked", lambda: len(self.journaled.book) if self.journaled.book is not None else 0)

    def process_element(self, row, ctx):
        transitions, updates = self.journaled.apply(row)
        if row[0] != CORRECTION:
            self.metrics["intervals"].inc()
            self.metrics["video_minutes"].inc(len(row[2]))
        self.metrics["feature_updates"].inc(len(updates))
        # the interval's updates in a few records, not one each: per record the crossing to the JVM,
        # the Kafka sink and the writer cost more than an update (one book: one key, one partition)
        for record in encode_group_records(VIDEO_SPIKES, updates):  # an Update is (video, as_of, absorbed, values)
            yield Row(KIND_UPDATE, UPDATES_KEY, record)
        for t in transitions:
            self.metrics["transitions"].inc()
            yield Row(KIND_TRANSITION, t["video_id"], orjson.dumps(t).decode())
