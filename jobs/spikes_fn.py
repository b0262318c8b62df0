"""The Python step of the spike job: one call per interval of the whole platform (and one per late
view), never per video. A thin wrapper around operators.spikes.SpikeBook, whose state is kept in
Flink as Arrow IPC bytes (declared column types, not pickled objects), written once per interval.
A late view (a correction) is applied to the book in memory and appended to a short list state,
not written with the whole book: a checkpoint holds the book as of its last interval plus the
corrections since, which a restore replays in order.

The input is keyed by one constant, so one task holds the book; its input rate is the number of
intervals (one a minute in event time), whatever the platform's size.
"""
from __future__ import annotations

import os

import numpy as np
import orjson
from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from featurestore.updates import FeatureUpdate, encode_records
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
PENDING_TYPE = Types.ROW_NAMED(["video_id", "interval_start"], [Types.STRING(), Types.LONG()])
OUTPUT_TYPE = Types.ROW_NAMED(["kind", "entity_id", "payload"], [Types.STRING(), Types.STRING(), Types.STRING()])


def lower_priority(nice: int) -> None:
    """Every thread of this process at `nice` (on Linux a nice value belongs to a thread; threads
    started later inherit their creator's)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except (OSError, ValueError):
            pass  # the thread has ended


class SpikeBookFunction(KeyedProcessFunction):
    """Input rows: (kind, interval_start, video_ids, views, regions, uploaded_at, platform_views,
    platform_videos); a correction has one video and zero platform totals."""

    def __init__(self, rules: SpikeRules, nice: int = 0):
        self.rules = rules
        self.nice = nice  # the worker process's nice value, set in open() (0: unchanged)
        self.state = self.pending = self.book = None
        self.metrics = {}

    def open(self, runtime_context: RuntimeContext):
        if self.nice:
            lower_priority(self.nice)
        self.state = runtime_context.get_state(ValueStateDescriptor("spike_book", Types.PRIMITIVE_ARRAY(Types.BYTE())))
        self.pending = runtime_context.get_list_state(ListStateDescriptor("spike_corrections", PENDING_TYPE))
        group = runtime_context.get_metrics_group()
        # feature_updates: as UpdateBatches counts the JVM operators' (fyp_job_feature_updates_total)
        self.metrics = {name: group.counter(name)
                        for name in ("intervals", "video_minutes", "transitions", "feature_updates")}
        group.gauge("videos_tracked", lambda: len(self.book) if self.book is not None else 0)

    def process_element(self, row, ctx):
        if self.book is None:
            self.book = self._restore()
        kind, start, ids = row[0], row[1], list(row[2])
        if kind == CORRECTION:
            updates = [u for v in ids if (u := self.book.correct(v, start, 1)) is not None]
            transitions = []
            for v in ids:
                self.pending.add(Row(v, start))
        else:
            iv = Interval(start, ids, np.asarray(row[3], dtype=np.int64), np.asarray(row[4], dtype=np.int64),
                          np.asarray(row[5], dtype=np.int64), int(row[6]), int(row[7]))
            transitions, updates = self.book.step(iv)
            self.metrics["intervals"].inc()
            self.metrics["video_minutes"].inc(len(ids))
        self.metrics["feature_updates"].inc(len(updates))
        # the interval's updates in a few records, not one each: per record the crossing to the JVM,
        # the Kafka sink and the writer cost more than an update (one book: one key, one partition)
        for record in encode_records(FeatureUpdate(VIDEO_SPIKES, u.video_id, u.as_of, u.absorbed, u.values)
                                     for u in updates):
            yield Row(KIND_UPDATE, UPDATES_KEY, record)
        for t in transitions:
            self.metrics["transitions"].inc()
            yield Row(KIND_TRANSITION, t["video_id"], orjson.dumps(t).decode())
        if kind != CORRECTION:
            self.state.update(self.book.to_bytes())
            self.pending.clear()

    def _restore(self) -> SpikeBook:
        """The book as of the last checkpoint: its last interval's bytes, then the corrections
        since (their updates went out before the checkpoint, so they are not sent again)."""
        saved = self.state.value()
        book = SpikeBook(self.rules) if saved is None else SpikeBook.from_bytes(self.rules, bytes(saved))
        for video_id, start in self.pending.get() or ():
            book.correct(video_id, start, 1)
        return book
