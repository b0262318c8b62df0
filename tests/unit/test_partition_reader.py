"""What one consume() result does to a service's positions (services/partition_reader.py)."""
from confluent_kafka import KafkaError

from services import partition_reader
from services.partition_reader import END_MARKER_HEADER, PartitionReader, sort_messages


class Message:
    """The parts of confluent_kafka.Message the reader uses."""

    def __init__(self, partition=0, offset=0, value=b"{}", headers=None, error=None):
        self._p, self._o, self._v, self._h, self._e = partition, offset, value, headers, error

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def value(self):
        return self._v

    def headers(self):
        return self._h

    def error(self):
        return self._e


def field(p: int) -> str:
    return f"t@id:{p}"


def test_a_transport_error_moves_no_position():
    transport = KafkaError(KafkaError._TRANSPORT, "broker connection lost")
    batch, markers, errors, _, _ = sort_messages([Message(error=transport)], field)
    assert batch.records == [] and batch.positions == {} and markers == {}
    assert [e.code() for e in errors] == [KafkaError._TRANSPORT]
    # between two records, an error changes nothing of theirs
    batch, _, errors, _, _ = sort_messages([Message(0, 7), Message(error=transport), Message(0, 8)], field)
    assert batch.positions == {"t@id:0": 9} and [m.offset() for m in batch.records] == [7, 8] and len(errors) == 1


def test_partition_eof_is_neither_a_record_nor_an_error():
    eof = KafkaError(KafkaError._PARTITION_EOF)
    batch, markers, errors, _, _ = sort_messages([Message(1, 3), Message(error=eof)], field)
    assert batch.positions == {"t@id:1": 4} and errors == [] and markers == {}


def test_an_end_marker_moves_the_position_and_is_not_a_record():
    msgs = [Message(0, 4), Message(0, 5, b"", [(END_MARKER_HEADER, b"run-1")]), Message(1, 2)]
    batch, markers, errors, _, _ = sort_messages(msgs, field)
    assert [m.offset() for m in batch.records] == [4, 2]
    assert batch.positions == {"t@id:0": 6, "t@id:1": 3} and markers == {0: "run-1"} and errors == []


def test_a_record_beyond_the_expected_offset_is_a_gap_to_read_again():
    msgs = [Message(0, 5), Message(0, 7), Message(0, 8), Message(1, 3)]
    out = sort_messages(msgs, field, expected={0: 5, 1: 3})
    assert [(m.partition(), m.offset()) for m in out.batch.records] == [(0, 5), (1, 3)]
    assert out.batch.positions == {"t@id:0": 6, "t@id:1": 4}  # not past the missing offset 6
    assert out.gaps == {0: (6, 7)} and out.skipped == {}
    # a partition whose next offset is not given is not checked
    assert sort_messages([Message(1, 40)], field, expected={0: 5}).gaps == {}


def test_a_gap_that_outlasted_the_patience_is_let_through_and_reported():
    out = sort_messages([Message(0, 7), Message(0, 8), Message(0, 12)], field, expected={0: 6}, outlasted={0})
    assert [m.offset() for m in out.batch.records] == [7, 8] and out.batch.positions == {"t@id:0": 9}
    assert out.skipped == {0: (6, 7)}
    assert out.gaps == {0: (9, 12)}  # a second gap in the same batch waits its own patience


class RacingBroker:
    """A consumer over a log whose records in `late` are not visible to the first fetch that
    reaches them: that fetch returns the records after them instead (what tansu 0.6.0 does when a
    fetch races a write). `gone` are offsets that never appear."""

    def __init__(self, log: dict, late: set, gone: set = frozenset()):
        self.log, self.late, self.gone = log, set(late), set(gone)
        self.at: dict = {}
        self.seeks: list = []

    def list_topics(self, topic, timeout=None):
        class Meta:
            topics = {topic: type("T", (), {"partitions": {p: None for p in self.log}})()}
        return Meta()

    def assign(self, tps):
        self.at = {tp.partition: (0 if tp.offset < 0 else tp.offset) for tp in tps}

    def seek(self, tp):
        self.seeks.append((tp.partition, tp.offset))
        self.at[tp.partition] = tp.offset

    def consume(self, num_messages, timeout):
        out = []
        for p, records in self.log.items():
            fetched = [o for o in records if o >= self.at[p] and o not in self.gone][:4]
            delivered = []
            for o in fetched:
                if (p, o) in self.late:
                    self.late.discard((p, o))  # visible to the next fetch
                    continue
                delivered.append(o)
                out.append(Message(p, o, f"{p}:{o}".encode()))
            if delivered:  # the client's position moves past what it received
                self.at[p] = delivered[-1] + 1
        return out

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        return min(self.log[tp.partition]), max(self.log[tp.partition]) + 1

    def close(self):
        pass


def racing_reader(monkeypatch, broker, patience_s):
    class Redis:
        def hgetall(self, key):
            return {}

    monkeypatch.setattr(partition_reader, "Consumer", lambda conf: broker)
    monkeypatch.setattr(partition_reader, "topic_id", lambda kafka, topic: "id")
    reader = PartitionReader({}, "t", "svc", Redis(), lambda call: call(), gap_patience_s=patience_s)
    reader.assign(reader.stored)
    return reader


def read_all(reader, polls=200):
    got = []
    for _ in range(polls):
        got += [(m.partition(), m.offset()) for m in reader.poll().records]
    return got


def test_the_reader_reads_records_a_racing_fetch_skipped_once_each_in_order(monkeypatch):
    log = {0: list(range(30)), 1: list(range(25))}
    broker = RacingBroker(log, late={(0, 3), (0, 4), (0, 17), (1, 0), (1, 24)})
    reader = racing_reader(monkeypatch, broker, patience_s=3600)
    got = read_all(reader)
    assert [o for p, o in got if p == 0] == log[0] and [o for p, o in got if p == 1] == log[1]
    assert {(0, 4), (0, 17), (1, 0)} <= set(broker.seeks)  # each read again from the offset it lacked
    assert reader.stats["gap_rereads"] == len(broker.seeks) and reader.stats["offsets_skipped"] == 0
    assert reader.positions == {0: 30, 1: 25}


def test_records_that_never_appear_are_skipped_after_the_patience(monkeypatch):
    broker = RacingBroker({0: list(range(12))}, late=set(), gone={5, 6})
    reader = racing_reader(monkeypatch, broker, patience_s=0)
    got = read_all(reader, polls=20)
    assert [o for _, o in got] == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]
    assert reader.stats["offsets_skipped"] == 2 and reader.positions == {0: 12}


def test_a_partition_read_from_its_beginning_expects_its_first_offset(monkeypatch):
    broker = RacingBroker({0: list(range(100, 110))}, late={(0, 100)})  # retention deleted 0-99
    reader = racing_reader(monkeypatch, broker, patience_s=3600)
    assert [o for _, o in read_all(reader, polls=10)] == list(range(100, 110))
