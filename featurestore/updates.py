"""The feature-update message: one group's values for one entity at one version.

On the feature-updates topic as compact JSON:
  {"g": group, "id": entity_id, "t": as_of_ms, "n": absorbed, "v": [values in group order]}
one per record (key = entity id), or, as the jobs send them, a JSON array of such objects per
record (key = the job's subtask, whose updates of an entity keep their order: jobs/jvm
UpdateBatches). The writer stores them. Each is absolute (not a delta), so applying one
twice, or an older one after a newer one, changes nothing. The version is (as_of, absorbed):
`absorbed` counts the events the producer's state has taken in, so of two updates with the same
as-of time the one that saw more events wins, however a restart regrouped them.

"v" may also be the JSON text of the values array, as a string: the JVM's operators send a group
of numbers so ({"v":"[12,3,0.25,...]"}; jobs/jvm SlidingTileSums), and the writer stores that text
as it came (featurestore/layout.py RowCodec.encode) and the offline log reads a batch of them in
one call: no number becomes a Python object on the writer's way (decoding the lists was a third
of its thread in a sparse backfill). `FeatureUpdate.value_list` gives the values either way.
"""
from __future__ import annotations

from operator import itemgetter
from typing import NamedTuple

import orjson


class FeatureUpdate(NamedTuple):
    group: str
    entity_id: str
    as_of: int
    absorbed: int
    values: list | str  # the values, or the JSON text of their array (see above)

    @property
    def version(self) -> tuple[int, int]:
        return (self.as_of, self.absorbed)

    @property
    def value_list(self) -> list:
        """The values as a list, whether the message held them as an array or as its text."""
        return orjson.loads(self.values) if type(self.values) is str else self.values


_FIELDS = itemgetter("g", "id", "t", "n", "v")  # FeatureUpdate's fields in a message, in order


def encode_update(u: FeatureUpdate) -> bytes:
    return orjson.dumps({"g": u.group, "id": u.entity_id, "t": u.as_of, "n": u.absorbed, "v": u.values})


# The most characters of updates a producer packs into one record (JSON array): far below the
# broker's 1 MB record limit, and about 80 engagement updates (jobs/jvm UpdateBatches uses it too).
RECORD_CHARS = 32 * 1024


def encode_records(updates, max_chars: int = RECORD_CHARS) -> list[str]:
    """`updates` (FeatureUpdate) as record values of the array form, in order: each a JSON array
    that closes with the update taking it to `max_chars` or beyond."""
    return _records((encode_update(u).decode() for u in updates), max_chars)


def encode_group_records(group: str, rows, max_chars: int = RECORD_CHARS) -> list[str]:
    """encode_records of one group's updates given as (entity_id, as_of, absorbed, values) rows,
    without a FeatureUpdate each: the spike book's minute has one per video with views, and
    building and encoding them took a third of its worker's time."""
    dumps = orjson.dumps
    return _records((dumps({"g": group, "id": r[0], "t": r[1], "n": r[2], "v": r[3]}).decode() for r in rows),
                    max_chars)


def _records(parts, max_chars: int) -> list[str]:
    """Encoded updates (JSON text) packed into arrays of about max_chars characters."""
    records, parts_of_record, size = [], [], 0
    for part in parts:
        parts_of_record.append(part)
        size += len(part) + 1
        if size >= max_chars:
            records.append("[" + ",".join(parts_of_record) + "]")
            parts_of_record, size = [], 0
    if parts_of_record:
        records.append("[" + ",".join(parts_of_record) + "]")
    return records


def decode_updates(raw: bytes) -> list[FeatureUpdate]:
    """A record's updates: one object, or an array of them."""
    d = orjson.loads(raw)
    if isinstance(d, dict):
        d = (d,)
    # the writer's per-update work: the fields fetched in C, the tuple built without a Python call
    return [tuple.__new__(FeatureUpdate, fields) for fields in map(_FIELDS, d)]


def latest_per_entity(updates) -> list[FeatureUpdate]:
    """Keeps only the newest version per (group, entity): a batch needs one write per key."""
    best: dict = {}
    for u in updates:  # by index, not by name or .version: this runs for every update the writer reads
        k = (u[0], u[1])
        cur = best.get(k)
        if cur is None or u[2] > cur[2] or (u[2] == cur[2] and u[3] > cur[3]):
            best[k] = u
    return list(best.values())
