"""The one use of redis-py internals: reading n pipelined replies straight from the hiredis reader.

redis-py's read_response() costs about 2 us per reply in Python; the read client's hot path reads
hundreds of replies per request, so it takes them from the parser's hiredis reader directly. That
reader is private to redis-py (redis==5.3.1's `_HiredisParser`: `_reader`, `_next_response`,
`read_from_socket`). Any other parser, or a parser holding a reply it peeked at, takes the public
path. tests/unit/test_redis_replies.py fails, naming this file, when redis-py changes under it.
"""
from __future__ import annotations

from redis._parsers.hiredis import NOT_ENOUGH_DATA


def hiredis_reader(conn):
    """(gets, fill) of the connection's hiredis reader, or None where the fast path does not apply."""
    parser = getattr(conn, "_parser", None)
    reader = getattr(parser, "_reader", None)
    if reader is None or getattr(parser, "_next_response", None) is not NOT_ENOUGH_DATA:
        return None
    return reader.gets, parser.read_from_socket


def read_replies(conn, n: int) -> list:
    """n replies from a redis-py connection (a reply that is an error is raised)."""
    fast = hiredis_reader(conn)
    if fast is None:
        return [conn.read_response() for _ in range(n)]
    gets, fill = fast
    out = []
    while len(out) < n:
        r = gets()
        if r is NOT_ENOUGH_DATA:
            fill()  # blocks up to the socket timeout; raises TimeoutError / ConnectionError
        elif isinstance(r, Exception):
            raise r
        else:
            out.append(r)
    return out
