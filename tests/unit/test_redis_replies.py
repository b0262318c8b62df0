"""featurestore/redis_replies.py against the installed redis-py: the fast path is taken and reads
what the public path reads. No Redis: replies come over a socket pair."""
import socket

import pytest
from redis._parsers.hiredis import _HiredisParser
from redis.connection import Encoder
from redis.exceptions import ResponseError

from featurestore.redis_replies import hiredis_reader, read_replies

REPLIES = b"*3\r\n$2\r\nv1\r\n$-1\r\n$5\r\nhello\r\n:42\r\n-ERR no such key\r\n"


class Connection:
    """The parts of a redis-py connection the parser and the adapter use."""

    def __init__(self, sock):
        self._sock, self.socket_timeout = sock, 1.0
        self.encoder = Encoder("utf-8", "strict", False)
        self._parser = _HiredisParser(socket_read_size=65536)
        self._parser.on_connect(self)

    def read_response(self):
        return self._parser.read_response()


@pytest.fixture
def connected():
    ours, theirs = socket.socketpair()
    ours.settimeout(1.0)
    yield Connection(ours), theirs
    ours.close()
    theirs.close()


def test_the_fast_path_applies_to_this_redis_py(connected):
    conn, _ = connected
    assert hiredis_reader(conn) is not None, (
        "redis-py's hiredis parser no longer has the private reader featurestore/redis_replies.py uses: "
        "reads fall back to the slower public path; update the adapter to the installed redis-py")


def test_the_fast_path_reads_what_the_public_path_reads(connected):
    conn, theirs = connected
    theirs.sendall(REPLIES[:7])  # a reply split across reads
    theirs.sendall(REPLIES[7:])
    assert read_replies(conn, 2) == [[b"v1", None, b"hello"], 42]
    with pytest.raises(ResponseError, match="no such key"):
        read_replies(conn, 1)

    theirs.sendall(REPLIES)
    public = [conn.read_response(), conn.read_response()]
    assert public == [[b"v1", None, b"hello"], 42]


def test_a_reply_the_parser_already_holds_takes_the_public_path(connected):
    conn, theirs = connected
    theirs.sendall(b":7\r\n:8\r\n")
    while conn._parser.can_read(timeout=1.0) and hiredis_reader(conn) is not None:
        pass  # redis-py's can_read() reads the socket, then peeks a reply into _next_response
    assert hiredis_reader(conn) is None
    assert read_replies(conn, 2) == [7, 8]
