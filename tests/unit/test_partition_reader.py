"""What one consume() result does to a service's positions (services/partition_reader.py)."""
from confluent_kafka import KafkaError

from services.partition_reader import END_MARKER_HEADER, sort_messages


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
    batch, markers, errors = sort_messages([Message(error=transport)], field)
    assert batch.records == [] and batch.positions == {} and markers == {}
    assert [e.code() for e in errors] == [KafkaError._TRANSPORT]
    # between two records, an error changes nothing of theirs
    batch, _, errors = sort_messages([Message(0, 7), Message(error=transport), Message(0, 8)], field)
    assert batch.positions == {"t@id:0": 9} and [m.offset() for m in batch.records] == [7, 8] and len(errors) == 1


def test_partition_eof_is_neither_a_record_nor_an_error():
    eof = KafkaError(KafkaError._PARTITION_EOF)
    batch, markers, errors = sort_messages([Message(1, 3), Message(error=eof)], field)
    assert batch.positions == {"t@id:1": 4} and errors == [] and markers == {}


def test_an_end_marker_moves_the_position_and_is_not_a_record():
    msgs = [Message(0, 4), Message(0, 5, b"", [(END_MARKER_HEADER, b"run-1")]), Message(1, 2)]
    batch, markers, errors = sort_messages(msgs, field)
    assert [m.offset() for m in batch.records] == [4, 2]
    assert batch.positions == {"t@id:0": 6, "t@id:1": 3} and markers == {0: "run-1"} and errors == []
