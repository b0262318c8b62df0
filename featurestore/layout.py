"""The one owner of the Redis key layout and value encoding. See featurestore/SPEC.md (v2).

Key:    fyp:v2:<group>:{<entity_id>}      a string; the braces are a Redis Cluster hash tag, so all
                                          groups of one entity live in one slot.
Value:  a JSON array ["<schema>", _ts, _n, _wt, <feature 1>, ..., <feature N>]
        schema -> the group's schema id   which features, in which order, of which types
        _ts  -> as-of event time (ms)     the version: an update with an older or equal (_ts, _n)
        _n   -> events absorbed           is ignored, so replays and restarts never move a
        _wt  -> wall time of the write    feature backwards or double count.
        features in the group's order, typed: int, float (shortest round-trip form), string, or a
        nested array / object (type json); null where a producer sent a value not of its type.
Expiry: a TTL per feature group, renewed on every accepted write.

WHY one string, not a hash per entity (v1): a ranking request reads hundreds of keys, and one MGET
of them costs Redis a fraction of as many HMGETs (measured on one machine with redis-benchmark:
200 keys per request, MGET p99 1.45 ms, pipelined HMGETs p99 2.56 ms). WHY JSON: a reader parses
a value in one C call (orjson: ~1 us for 31 values, where splitting text and converting each value
in Python took ~3 us), the types travel with the values, and any language reads it.
"""
from __future__ import annotations

import json
import math
import zlib

import orjson

SPEC_VERSION = 2
PREFIX = f"fyp:v{SPEC_VERSION}"
# The services' own records (milestone claims, alert dedup records, webhook outboxes) kept their
# format when the feature values changed to v2, and keep their keys: a notifier or alerter
# upgraded across the change still finds every claim and record, so it sends nothing twice.
RECORDS_PREFIX = "fyp:v1"
# positions in a stored value: the header, then the features from VALUES_AT on
SCHEMA_AT, AS_OF_AT, ABSORBED_AT, WRITTEN_AT_AT, VALUES_AT = 0, 1, 2, 3, 4


def entity_key(group: str, entity_id: str) -> str:
    return f"{PREFIX}:{group}:{{{entity_id}}}"


def writer_offsets_key(writer: str) -> str:
    """Hash of the writer service's consumed positions, "<topic>:<partition>" -> next offset. Kept
    in Redis beside the features they produced (written in the same pipeline), so the writer does
    not depend on the broker's consumer-group coordinator. Under the feature layout's prefix: they
    say what the stored values hold, so a writer of a new layout starts with none and rebuilds
    the store from the topic."""
    return f"{PREFIX}:_offsets:{{{writer}}}"


def milestone_key(video_id: str) -> str:
    """Hash of a video's crossed milestones: "<threshold>" -> JSON {"crossed_at", "creator_id",
    "notified"}. Written once per field (HSETNX semantics), so it also deduplicates notifications."""
    return f"{RECORDS_PREFIX}:video_milestones:{{{video_id}}}"


def spike_alert_key(video_id: str) -> str:
    """A video's last spike alert: the dedup record that enforces one alert per cooldown, kept in
    Redis so a restarted alerter (or a replaying job) does not alert again. See services/alerts/."""
    return f"{RECORDS_PREFIX}:spike_alerts:{{{video_id}}}"


def alert_outbox_key(webhook: str) -> str:
    """A webhook's pending deliveries (alerts not yet accepted by the receiver), kept in Redis so
    they survive a restart of the alerter. See services/alerts/."""
    return f"{RECORDS_PREFIX}:_alert_outbox:{{{webhook}}}"


def schema_id(group) -> str:
    """8 hex digits naming a group's version and its features' names, types and order. A reader
    whose group definition differs (another `trends.windows`, a feature added) would take values
    from the wrong positions; it compares this instead and treats the value as unreadable."""
    spec = f"{group.name}|{group.version}|" + ",".join(f"{f.name}:{f.dtype}" for f in group.features)
    return f"{zlib.crc32(spec.encode()):08x}"


class SchemaMismatch(ValueError):
    """A stored value written under another definition of its group than the reader's."""


def to_dtype(dtype: str, value):
    """`value` as a feature of type `dtype` ("int", "float", "str", "json"); raises TypeError or
    ValueError when it is not one (2.5 for an int, NaN, a number for a str...)."""
    if dtype == "int":
        if isinstance(value, int):  # bool too: True is 1
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif dtype == "float":
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    elif dtype == "str":
        if isinstance(value, str):
            return value
    elif dtype == "json":
        if isinstance(value, (list, dict)):
            return value
    else:
        raise ValueError(f"unknown feature type {dtype!r}")
    raise TypeError(f"{value!r} is not a {dtype} feature value")


def _fragment(dtype: str, value) -> str:
    """One feature as JSON text; floats in Python's shortest round-trip form."""
    value = to_dtype(dtype, value)
    if dtype == "int":
        return str(value)
    if dtype == "float":
        return repr(value)
    return encode_value(value) if dtype == "json" else orjson.dumps(value).decode()


_EXACT_TYPES = {"int": int, "float": float, "str": str, "json": list}


class RowCodec:
    """Encodes and decodes the stored values of one feature group."""

    def __init__(self, group):
        self.group = group
        self.schema = schema_id(group)
        self._dtypes = tuple(f.dtype for f in group.features)
        # the Python type each feature's value has when it is already what the layout stores
        self._types = tuple(_EXACT_TYPES.get(d) for d in self._dtypes)
        self.numeric = all(d in ("int", "float") for d in self._dtypes)

    def encode(self, as_of: int, absorbed: int, written_at: int, values) -> tuple[str, list]:
        """-> (the stored value, [(feature, value) stored as null because it was not of the
        feature's type]). `values`: a list of every feature's value (the caller has checked the
        count), or the JSON text of one (as the JVM sends a group of numbers: featurestore/updates.py)."""
        if type(values) is str:
            if self.numeric and is_number_array_text(values, len(self._dtypes)):
                # stored as the JVM wrote it: the writer need not hold every number as a Python
                # object (decoding the lists was a third of its thread in a sparse backfill)
                return f'["{self.schema}",{int(as_of)},{int(absorbed)},{int(written_at)},{values[1:]}', []
            values = values_of_text(values, len(self._dtypes))
        # Fast path (the writer's every update): each value already of its feature's exact type
        # (as the jobs' JSON decodes), encoded in one C call. A non-finite float (orjson writes
        # it as null) or an integer beyond 64 bits goes the checked way below.
        if tuple(map(type, values)) == self._types:
            try:
                out = orjson.dumps([self.schema, int(as_of), int(absorbed), int(written_at), *values])
            except orjson.JSONEncodeError:
                out = b"null"
            if b"null" not in out:
                return out.decode(), []
        parts, bad = [], []
        for f, dtype, v in zip(self.group.features, self._dtypes, values):
            try:
                parts.append(_fragment(dtype, v))
            except (TypeError, ValueError):
                parts.append("null")
                bad.append((f.name, v))
        return f'["{self.schema}",{int(as_of)},{int(absorbed)},{int(written_at)},{",".join(parts)}]', bad

    def decode(self, raw) -> tuple[list, int, int, int] | None:
        """The stored value -> (values in group order, None where null; as_of, absorbed,
        written_at); None when the key is absent. Raises SchemaMismatch."""
        if raw is None:
            return None
        row = orjson.loads(raw)
        if row[SCHEMA_AT] != self.schema:
            raise SchemaMismatch(f"{self.group.name}: stored schema {row[SCHEMA_AT]}, this reader's {self.schema}")
        return row[VALUES_AT:], row[AS_OF_AT], row[ABSORBED_AT], row[WRITTEN_AT_AT]


NUMBER_BYTES = b"0123456789.-+eE"  # every character a JSON number may have


def is_number_array_text(text: str, count: int) -> bool:
    """Whether `text` has the shape of a JSON array of `count` numbers: brackets, `count` items,
    only the characters of numbers. WHY not a full parse: the writer stores such a text as it came
    (the JVM formats every int and float of a numeric group), and this check is what it can afford
    per update (about 1 us in C string methods, where a typed regex took 3.9). It refuses the
    bugs a producer could make (NaN, null, a string, a value too many or too few); an empty item
    (`1,,2`) and an int written as 2.5 pass: the JVM writes every item, ints from longs."""
    return (text.count(",") == count - 1 and text[:1] == "[" and text[-1:] == "]"
            and not text.encode().translate(None, _ARRAY_BYTES))


_ARRAY_BYTES = NUMBER_BYTES + b",[]"


def values_of_text(text: str, count: int) -> list:
    """The values of a JSON array text; a text that is not a JSON array of `count` items gives
    `count` values that are not of any feature's type (stored as null, counted as coerced)."""
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        values = None
    return values if isinstance(values, list) and len(values) == count else [_NOT_A_VALUE] * count


class _Unreadable:
    """Stands for each value of a values text that could not be read: of no feature's type."""

    def __repr__(self):
        return "<not a JSON array of the group's values>"


_NOT_A_VALUE = _Unreadable()


def decode_row(group, raw) -> tuple[list, int, int, int] | None:
    """RowCodec(group).decode(raw), for tools and tests. The read path decodes only the features
    it asks for (featurestore/read_plan.py)."""
    return RowCodec(group).decode(raw)


def encode_value(value) -> str:
    """One value as text, as the offline log's string columns hold it: ranked lists as compact
    JSON (floats in shortest round-trip form), numbers in decimal."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite feature value {value!r}")
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    raise TypeError(f"cannot encode {type(value).__name__} as a feature value")


# Versioned write of one or more keys: KEYS = the keys; ARGV = for each key in order its ts,
# absorbed, ttl_ms and value (RowCodec.encode). A key is written when the version it carries is
# newer than the stored one; an older or equal one is a replay and is ignored. Returns how many
# keys were written. The stored version is read from the value's head, ["<schema>",<_ts>,<_n>,...;
# integers up to 2^53 are exact in Lua.
# WHY several keys per call: a call costs Redis more than the writes it makes (one key per call:
# 10.4 us per key in Redis's commandstats), and the writer packs one command instead of one per
# key. Calls stay short (WRITE_KEYS_PER_CALL keys), so a reader's request never waits behind a long
# script.
WRITE_KEYS_PER_CALL = 100
WRITE_SCRIPT = """
local written = 0
for i, key in ipairs(KEYS) do
  local at = 4 * i - 3
  local ts = tonumber(ARGV[at])
  local n = tonumber(ARGV[at + 1])
  local newer = true
  local cur = redis.call('GET', key)
  if cur then
    local cts, cn = string.match(cur, '^%["[^"]*",(%d+),(%d+),')
    if cts then
      cts = tonumber(cts)
      cn = tonumber(cn)
      newer = ts > cts or (ts == cts and n > cn)
    end
  end
  if newer then
    redis.call('SET', key, ARGV[at + 3], 'PX', ARGV[at + 2])
    written = written + 1
  end
end
return written
"""
