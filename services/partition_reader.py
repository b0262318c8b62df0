"""The one way a service reads a topic: every partition, assigned by hand, from read positions
kept in Redis next to the service's effects (not in the broker's consumer groups: on tansu a group
whose member was killed can stay without partitions for good, which we hit).

Positions belong to one incarnation of the topic. They are stored in the hash
layout.writer_offsets_key(name), one field per partition: "<topic>@<topic id>:<partition>" -> the
next offset to read. The topic id is the broker's (a deleted and re-created topic gets a new one).
At start, positions of another incarnation of the topic (or of the older "<topic>:<partition>"
form, which has no id) are reported, removed, and the partition is read from its beginning;
re-reading is harmless, every effect downstream is idempotent. A position beyond a partition's
end (the end as the fetch responses report it) is reported and read from the beginning too.

End markers: `send_end_markers` appends a record with the header END_MARKER_HEADER = run id to
every partition, after a bounded job has finished writing; a reader has read everything the job
wrote once it has passed its marker on every partition (`reached`). That, never an idle timer,
ends a backfill.

Error messages from the client never move a position: positions come from records alone.

Gaps: offsets of the topics the services read are contiguous (their producers are not
transactional, so no control records take offsets). A record beyond the next offset expected on its
partition means the broker answered a fetch that raced a write with a later batch before an
earlier one was visible (tansu 0.6.0 does this under load: a tailing reader jumped over runs of 26
offsets whose records a later read found in place). The reader then drops the partition's records
from that one on, seeks back to the expected offset and reads again. A gap still there after
`gap_patience_s` (records truly gone, e.g. deleted by retention) is accepted, logged and counted in
`offsets_skipped`.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Callable, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from featurestore import layout
from settings.kafka_clients import PRODUCER_DELIVERY

log = logging.getLogger("fyp.reader")

END_MARKER_HEADER = "fyp.end-of-run"


class Batch(NamedTuple):
    records: list  # confluent_kafka Messages with data (not errors, not end markers), in order
    positions: dict  # position field -> next offset, for every partition a record or marker came from


class EndMarkerError(RuntimeError):
    pass


def topic_id(kafka: dict, topic: str, timeout_s: float = 30) -> str:
    """The broker's id of the topic's current incarnation."""
    admin = AdminClient(dict(kafka))
    try:
        desc = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout_s)[topic].result()
    except KafkaException as e:
        raise RuntimeError(f"topic {topic!r}: cannot describe it ({e}); is the broker up and the topic created?") from None
    return str(desc.topic_id)


def is_end_marker(message) -> bool:
    """Whether a record is an end marker (readers of these topics other than the services skip them)."""
    return any(k == END_MARKER_HEADER for k, _ in (message.headers() or ()))


def position_field(topic: str, incarnation: str, partition: int) -> str:
    return f"{topic}@{incarnation}:{partition}"


def take_ready(consumer, most: int, timeout: float) -> list:
    """Up to `most` messages: those already fetched, or else the first to arrive within `timeout`
    with any that came with it. WHY not consume(most, timeout): librdkafka returns from it only
    when `most` messages are there or the timeout has passed, so each batch of fewer (every one
    while caught up, and every one of a backfill, whose records the fetch-ahead limit keeps below
    `most`) waited out the whole timeout: up to 50 ms on every feature's way to Redis."""
    messages = consumer.consume(num_messages=most, timeout=0)
    if not messages:
        messages = consumer.consume(num_messages=1, timeout=timeout)
        if messages and most > 1:
            messages += consumer.consume(num_messages=most - 1, timeout=0)
    return messages


class PartitionReader:
    def __init__(self, kafka: dict, topic: str, name: str, client, retry: Callable, batch_max: int = 2000,
                 poll_timeout_ms: int = 50, fetch_ahead_kb: int | None = None, gap_patience_s: float = 10.0):
        """kafka: connection settings (settings.kafka_clients.client_config); client: the Redis holding
        the positions; retry(call): the service's retry of Redis calls; fetch_ahead_kb: how much
        the client fetches ahead of the service per partition (None: librdkafka's default)."""
        self.kafka, self.topic, self.name = dict(kafka), topic, name
        self.batch_max, self.poll_timeout = batch_max, poll_timeout_ms / 1000
        self.stats = {"position_resets": 0, "consumer_errors": 0, "gap_rereads": 0, "offsets_skipped": 0}
        self.gap_patience_s = gap_patience_s
        self._gaps: dict[int, tuple[int, float]] = {}  # partition -> (offset missing, since: monotonic)
        self.markers: dict[int, str] = {}  # partition -> run id of the newest end marker passed
        self.incarnation = topic_id(kafka, topic)
        ahead = {} if fetch_ahead_kb is None else {"queued.max.messages.kbytes": fetch_ahead_kb,
                                                    "max.partition.fetch.bytes": fetch_ahead_kb * 1024}
        self.consumer = Consumer({**kafka, "group.id": name,  # identification only: no subscribe, no commits
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "fetch.wait.max.ms": 50, **ahead})
        meta = self.consumer.list_topics(topic, timeout=30)
        self.partitions = sorted(meta.topics[topic].partitions) if topic in meta.topics else []
        if not self.partitions:
            raise RuntimeError(f"topic {topic!r} has no partitions (is the broker up and the topic created?)")
        self._client, self._retry = client, retry
        self.stored = self._stored_positions()
        self._unchecked: set[int] = set()  # partitions whose position is not yet known to be within the end

    def field(self, partition: int) -> str:
        return position_field(self.topic, self.incarnation, partition)

    def _stored_positions(self) -> dict[str, int]:
        key = layout.writer_offsets_key(self.name)
        raw = {k.decode(): int(v) for k, v in self._retry(lambda: self._client.hgetall(key)).items()}
        mine = {self.field(p) for p in self.partitions}
        stale = [f for f in raw if f not in mine and f.rsplit(":", 1)[0].split("@", 1)[0] == self.topic]
        if stale:
            self.stats["position_resets"] += len(stale)
            log.warning("%s: stored positions %s belong to another incarnation of topic %r (now id %s): "
                        "they are dropped and the topic is read from its beginning", self.name,
                        {f: raw[f] for f in sorted(stale)}, self.topic, self.incarnation)
            self._retry(lambda: self._client.hdel(key, *stale))
        return {f: v for f, v in raw.items() if f in mine}

    def assign(self, positions: dict[str, int]) -> None:
        """Starts every partition at positions[field] (absent: the beginning)."""
        tps = []
        for p in self.partitions:
            at = positions.get(self.field(p))
            tps.append(TopicPartition(self.topic, p, OFFSET_BEGINNING if at is None else at))
            if at:
                self._unchecked.add(p)
        self.positions = {p: positions.get(self.field(p), 0) for p in self.partitions}
        # the next offset each partition must deliver: its stored position, or its first offset
        self.expected = {p: positions[self.field(p)] if self.field(p) in positions else self._first_offset(p)
                         for p in self.partitions}
        self.consumer.assign(tps)

    def _first_offset(self, partition: int) -> int:
        """The partition's log start (0 unless retention deleted records). If the broker does not
        answer, 0: a later start is then a gap that outlasts the patience and is let through."""
        try:
            lo, _ = self.consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
        except KafkaException:
            return 0
        return max(lo, 0)

    def poll(self) -> Batch:
        messages = take_ready(self.consumer, self.batch_max, self.poll_timeout)
        now = time.monotonic()
        outlasted = {p for p, (at, since) in self._gaps.items()
                     if self.expected.get(p) == at and now - since >= self.gap_patience_s}
        out = sort_messages(messages, self.field, self.expected, outlasted)
        for p, (at, found) in out.skipped.items():
            self._gaps.pop(p, None)
            self.stats["offsets_skipped"] += found - at
            log.warning("%s: offsets %d-%d of %s[%d] still missing after %.0fs of re-reading: skipped",
                        self.name, at, found - 1, self.topic, p, self.gap_patience_s)
        for p, (at, _found) in out.gaps.items():
            self.stats["gap_rereads"] += 1
            if self._gaps.get(p, (None,))[0] != at:
                self._gaps[p] = (at, now)
            self.consumer.seek(TopicPartition(self.topic, p, at))
        for err in out.errors:
            self.stats["consumer_errors"] += 1
            log.warning("%s: consumer error on %s: %s", self.name, self.topic, err)
            if err.fatal():
                raise KafkaException(err)
        self.markers.update(out.markers)
        for f, offset in out.batch.positions.items():
            p = int(f.rsplit(":", 1)[1])
            self.positions[p] = self.expected[p] = offset
            if p not in out.gaps:
                self._gaps.pop(p, None)
        if self._unchecked:
            self._check_ends()
        return out.batch

    def _check_ends(self) -> None:
        """A position beyond its partition's end (the topic lost records, or positions of a broker
        that was replaced) would wait there silently: read such a partition from its beginning."""
        for p in list(self._unchecked):
            lo, hi = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            if hi < 0:
                continue  # no fetch response yet
            self._unchecked.discard(p)
            if self.positions[p] > hi:
                self.stats["position_resets"] += 1
                log.warning("%s: stored position %d of %s[%d] is beyond the partition's end %d: reading the "
                            "partition from its beginning", self.name, self.positions[p], self.topic, p, hi)
                self.positions[p] = max(lo, 0)
                self.expected[p] = max(lo, 0)
                self.consumer.seek(TopicPartition(self.topic, p, max(lo, 0)))

    def reached(self, run_id: str) -> bool:
        return all(self.markers.get(p) == run_id for p in self.partitions)

    def close(self) -> None:
        self.consumer.close()


class Sorted(NamedTuple):
    batch: Batch
    markers: dict  # end markers passed {partition: run id}
    errors: list  # client errors
    gaps: dict  # partition -> (offset expected, offset found): to read again from the expected one
    skipped: dict  # the same, for gaps let through (partitions in `outlasted`)


def sort_messages(messages, field: Callable[[int], str], expected: dict | None = None,
                  outlasted: frozenset | set = frozenset()) -> Sorted:
    """Sorts one consume() result. Positions come from records and markers only: an error never
    moves one. `expected`: partition -> the next offset it must deliver; a partition's records from
    one beyond it on are left out and the gap is reported (or let through and reported as skipped,
    for a partition in `outlasted`)."""
    records, next_offsets, markers, errors = [], {}, {}, []
    gaps, skipped = {}, {}
    expected = dict(expected or {})
    for m in messages:
        err = m.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                errors.append(err)
            continue
        p = m.partition()
        if p in gaps:
            continue
        offset = m.offset()
        want = expected.get(p)
        if want is not None and offset > want:
            if p not in outlasted:
                gaps[p] = (want, offset)
                continue
            skipped[p] = (want, offset)
            outlasted = outlasted - {p}  # that gap only: a later one in the batch waits its own patience
        expected[p] = next_offsets[p] = offset + 1
        headers = m.headers()
        marker = dict(headers).get(END_MARKER_HEADER) if headers else None
        if marker is not None:
            markers[p] = marker.decode()
        else:
            records.append(m)
    positions = {field(p): offset for p, offset in next_offsets.items()}
    return Sorted(Batch(records, positions), markers, errors, gaps, skipped)


def send_end_markers(kafka: dict, topic: str, run_id: str, timeout_s: float = 60) -> int:
    """Appends an end marker of `run_id` to every partition of `topic`; returns how many. Raises
    EndMarkerError if any was not acknowledged."""
    producer = Producer({**kafka, **PRODUCER_DELIVERY})
    meta = producer.list_topics(topic, timeout=timeout_s)
    partitions = sorted(meta.topics[topic].partitions) if topic in meta.topics else []
    if not partitions:
        raise EndMarkerError(f"topic {topic!r} has no partitions: cannot mark the end of run {run_id}")
    failures = []
    for p in partitions:
        producer.produce(topic, b"", partition=p, headers=[(END_MARKER_HEADER, run_id.encode())],
                         on_delivery=lambda err, _m: err and failures.append(err))
    if producer.flush(timeout_s) or failures:
        raise EndMarkerError(f"end markers of run {run_id} not acknowledged on {topic!r} within {timeout_s:.0f}s: "
                             f"{failures[:3] or 'timed out'}")
    return len(partitions)


def drain_to_end_markers(step: Callable[[], int], reader: PartitionReader, run_id: str,
                         progress_every_s: float = 30.0) -> None:
    """Calls `step()` until `reader` has passed the end marker of `run_id` on every partition. No
    timeout: a stalled broker or Redis makes this wait, never end early."""
    said = time.monotonic()
    while not reader.reached(run_id):
        step()
        if time.monotonic() - said >= progress_every_s:
            said = time.monotonic()
            missing = [p for p in reader.partitions if reader.markers.get(p) != run_id]
            log.warning("%s: still reading %s up to the end of run %s (partitions %s; at %s)", reader.name,
                        reader.topic, run_id, missing, {p: reader.positions[p] for p in missing})


def read_to_end(service, run_id: str | None = None) -> str:
    """Marks the current end of the service's topic and has the service read up to it (for a
    service whose producers have finished). Returns the run id of the markers."""
    run_id = run_id or f"{service.reader.name}-{uuid.uuid4().hex[:12]}"
    send_end_markers(service.reader.kafka, service.reader.topic, run_id)
    service.drain(run_id)
    return run_id
