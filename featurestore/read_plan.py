"""What one feature read asks Redis for, packed once, and how the replies decode.

A ranking request asks for the same few features of hundreds of entities; building a redis-py
command object per key costs more than Redis takes to answer (measured: 100 keys pipelined through
redis-py 0.63 ms p50, the same commands pre-packed 0.27 ms). So a `GroupSelection` keeps its key
prefix and its value positions ready, a read packs one MGET of every key, and a reply decodes
only the features asked for. Keys and the value format come from layout.py, the one owner of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

import orjson

from featurestore import layout
from featurestore.layout import AS_OF_AT, SCHEMA_AT, WRITTEN_AT_AT
from schemas.features import FeatureGroup


class StoredRow(NamedTuple):
    """One stored value, decoded for a selection."""
    values: tuple | None  # in the selection's feature order, None where null; None: no such key
    as_of: int | None  # the values' as-of event time (ms)
    written_at: int | None  # when the writer stored them (ms)


_ABSENT = StoredRow(None, None, None)


def pack_mget(keys) -> bytes:
    """The RESP bytes of `MGET <key...>` for (GroupSelection, entity id) pairs, built without a
    call per key."""
    raw = [sel.key_prefix + eid.encode() + b"}" for sel, eid in keys]
    return b"*%d\r\n$4\r\nMGET\r\n%s" % (len(raw) + 1, b"".join([b"$%d\r\n%s\r\n" % (len(k), k) for k in raw]))


@dataclass(frozen=True, eq=False)
class GroupSelection:
    """Some features of one group, in the caller's order. Hashed by identity: it is a dict key
    on every read (the client memoizes one per feature list), and hashing its group's feature
    tuples each time cost more than the Redis read."""
    group: FeatureGroup
    names: tuple[str, ...]

    def __post_init__(self):
        for n in self.names:
            self.group.dtype(n)  # KeyError names the feature and the group
        order = self.group.names
        positions = [layout.VALUES_AT + order.index(n) for n in self.names]
        set_ = object.__setattr__
        # the bytes before the entity id; the key is key_prefix + id + "}" (layout.entity_key)
        set_(self, "key_prefix", layout.entity_key(self.group.name, "\0").split("\0")[0].encode())
        set_(self, "schema", layout.schema_id(self.group))
        # pick(stored row) -> the selected values, in order. itemgetter of one position returns
        # the item, of several a tuple: always a tuple
        set_(self, "pick", itemgetter(*positions) if len(positions) > 1 else (lambda row, i=positions[0]: (row[i],)))
        # what a stored row of no key reads as: this schema, no times, every value null
        set_(self, "empty_row", [self.schema, None, None, None] + [None] * len(order))

    def key(self, entity_id: str) -> str:
        return layout.entity_key(self.group.name, entity_id)

    def decode(self, raw) -> StoredRow:
        """The stored value -> (values in this selection's order, None where null; as_of ms;
        write time ms); all None when the key does not exist. Raises layout.SchemaMismatch for
        a value written under another definition of the group."""
        if raw is None:
            return _ABSENT
        row = _parse_or_text(raw)
        if row.__class__ is not list or not row or row[SCHEMA_AT] != self.schema:
            raise self.mismatch(row)
        return StoredRow(self.pick(row), row[AS_OF_AT], row[WRITTEN_AT_AT])

    def mismatch(self, row) -> layout.SchemaMismatch:
        """The error for a stored row this selection cannot read: another schema, or not a row."""
        stored = row[SCHEMA_AT] if row.__class__ is list and row else f"none (value {str(row)[:40]!r})"
        return layout.SchemaMismatch(f"{self.group.name}: stored schema {stored}, this reader's {self.schema}")


def parse_replies(replies) -> list:
    """The MGET replies (or cached replies) of a request -> their stored rows (None: no such
    key), parsed in one C call: the values are typed JSON (layout.py), and one call for all of
    them beats one per value (measured on 200 values: 79 against 95 us)."""
    if None in replies:  # absent keys
        replies = [b"null" if r is None else r for r in replies]
    try:
        return orjson.loads(b"[%s]" % b",".join(replies))
    except orjson.JSONDecodeError:  # some value is not JSON (not ours): that one reads as unreadable
        return [_parse_or_text(r) for r in replies]


def _parse_or_text(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")  # not a row: a schema mismatch to the reader


def select(groups: dict[str, FeatureGroup], entity: str, features) -> list[GroupSelection]:
    """The groups of `entity` holding `features` (None: every feature of every group of it)."""
    own = [g for g in groups.values() if g.entity == entity]
    if not own:
        raise KeyError(f"no feature group for entity {entity!r}")
    if features is None:
        return [GroupSelection(g, g.names) for g in own]
    by_group: dict[str, list[str]] = {}
    for f in features:
        g = next((g for g in own if f in g.names), None)
        if g is None:
            raise KeyError(f"unknown feature {f!r} for entity {entity!r}")
        if f not in by_group.setdefault(g.name, []):
            by_group[g.name].append(f)
    return [GroupSelection(groups[name], tuple(names)) for name, names in by_group.items()]
