import dataclasses
import random
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from featurestore import layout
from featurestore.updates import (FeatureUpdate, decode_updates, encode_group_records, encode_records, encode_update,
                                 latest_per_entity)
from settings.config import load_config
from schemas.features import Feature
from operators.feature_groups import groups_for

GROUPS = groups_for(load_config(env={}))


def test_key_layout_is_versioned_and_hash_tagged():
    assert layout.entity_key("video_engagement", "v1") == "fyp:v2:video_engagement:{v1}"


def test_row_round_trips_every_type_exactly_as_json():
    g = GROUPS["video_spikes"]
    codec = layout.RowCodec(g)
    values = [0.1, "super_spike", 1_700_000_000_000, 1e-300, 1.0 / 3, 42, 7.0]
    raw, bad = codec.encode(1_700_000_060_000, 17, 1_700_000_061_234, values)
    assert bad == []
    assert orjson.loads(raw)[:5] == [layout.schema_id(g), 1_700_000_060_000, 17, 1_700_000_061_234, 0.1]
    assert codec.decode(raw.encode()) == (values, 1_700_000_060_000, 17, 1_700_000_061_234)
    rng = random.Random(7)  # floats survive exactly, whatever their magnitude
    floats = [rng.random() * 10.0 ** rng.randint(-30, 30) for _ in range(2000)]
    for x in floats:
        assert codec.decode(codec.encode(1, 1, 1, [x, "normal", 0, x, -x, 0, x])[0])[0] == [x, "normal", 0, x, -x, 0, x]
    u = layout.RowCodec(GROUPS["user_interests"])
    ranked = [["music", 1.5], ['odd "quoted" \u2603 name', 0.25]]
    assert u.decode(u.encode(5, 1, 6, [ranked, [], 3, 0])[0])[0] == [ranked, [], 3, 0]
    assert u.decode(None) is None


def test_values_not_of_their_type_are_stored_as_null_and_others_converted():
    codec = layout.RowCodec(GROUPS["video_spikes"])
    raw, bad = codec.encode(1, 1, 1, [float("nan"), 5, 3.0, 1, True, 2.5, "x"])
    values = codec.decode(raw)[0]
    assert values == [None, None, 3, 1.0, 1.0, None, None]
    assert type(values[2]) is int and type(values[3]) is float
    assert [name for name, _ in bad] == ["spike_score", "spike_state", "views_last_interval", "baseline_rate"]


def test_well_typed_values_that_encode_as_null_take_the_checked_way():
    # the one-call encoding of well-typed values falls back when its output holds a null: a
    # string that says "null" is kept as it is, a NaN inside a ranked list stores the feature as null
    codec = layout.RowCodec(GROUPS["video_spikes"])
    values = [0.5, "null", 3, 1.0, 2.0, 4, 1.5]
    raw, bad = codec.encode(1, 1, 1, values)
    assert bad == [] and codec.decode(raw)[0] == values
    u = layout.RowCodec(GROUPS["user_interests"])
    raw, bad = u.encode(5, 1, 6, [[["music", float("nan")]], [], 3, 0])
    assert u.decode(raw)[0] == [None, [], 3, 0] and [name for name, _ in bad] == ["top_categories"]


def test_schema_id_changes_with_any_feature_name_type_order_or_version():
    g = GROUPS["video_spikes"]
    variants = [dataclasses.replace(g, version=2),
                dataclasses.replace(g, features=g.features[::-1]),
                dataclasses.replace(g, features=g.features[:-1]),
                dataclasses.replace(g, features=(Feature(g.features[0].name, "int"), *g.features[1:])),
                dataclasses.replace(g, features=(Feature("renamed", g.features[0].dtype), *g.features[1:]))]
    ids = {layout.schema_id(v) for v in variants}
    assert len(ids) == len(variants) and layout.schema_id(g) not in ids
    assert layout.schema_id(g) == layout.schema_id(dataclasses.replace(g))  # stable across processes too: crc32
    raw, _ = layout.RowCodec(variants[0]).encode(1, 1, 1, [0.5, "normal", 0, 1.0, 1.0, 3, 2.0])
    with pytest.raises(layout.SchemaMismatch, match="video_spikes: stored schema"):
        layout.decode_row(g, raw)


def test_values_round_trip_exactly():
    for v in (0, 17, -3, 0.1, 1 / 3, 1e-300, 123456.789):
        kind = "int" if isinstance(v, int) else "float"
        assert layout.to_dtype(kind, orjson.loads(layout.encode_value(v))) == v
    with pytest.raises(ValueError):
        layout.encode_value(float("nan"))


def test_update_codec_and_newest_per_entity():
    a = FeatureUpdate("g", "v1", 1000, 5, [1, 0.5])
    assert decode_updates(encode_update(a)) == [a]
    batch = [a, FeatureUpdate("g", "v1", 1000, 7, [2, 0.5]), FeatureUpdate("g", "v1", 999, 9, [0, 0.0]),
             FeatureUpdate("g", "v2", 5, 1, [1, 1.0])]
    best = {u.entity_id: u for u in latest_per_entity(batch)}
    assert best["v1"].absorbed == 7 and best["v2"].as_of == 5


def test_update_records_hold_every_update_in_order_and_close_at_their_size():
    updates = [FeatureUpdate("g", f"v{i % 13}", 1000 * i, i, [i, i / 3]) for i in range(500)]
    records = encode_records(updates, max_chars=1000)
    assert len(records) > 5 and encode_records([]) == []
    assert [u for r in records for u in decode_updates(r.encode())] == updates
    for r in records[:-1]:  # each closes with the update that took it to 1000 characters or beyond
        last = encode_update(decode_updates(r.encode())[-1]).decode()
        assert len(r) - len(last) - 2 < 1000 <= len(r)


def test_one_groups_rows_encode_as_their_feature_updates():
    rows = [(f"v{i % 13}", 1000 * i, i, [i, i / 3, "rising"]) for i in range(300)]
    want = encode_records([FeatureUpdate("g", *r) for r in rows], max_chars=700)
    assert len(want) > 5
    assert encode_group_records("g", rows, max_chars=700) == want
    assert encode_group_records("g", []) == []


def test_spec_example_value_is_what_the_writer_writes():
    spec = (Path(layout.__file__).parent / "SPEC.md").read_text()
    example = spec.split("Example (`video_spikes`): `", 1)[1].split("`", 1)[0]
    codec = layout.RowCodec(GROUPS["video_spikes"])
    values, as_of, absorbed, written_at = codec.decode(example)
    assert codec.encode(as_of, absorbed, written_at, values)[0] == example


def _java_float(x: float) -> str:
    """A positive float as the JVM's Json.number writes it: the shortest digits (as Python's repr),
    in Java's Double.toString form (0.001 to 1e7 as a decimal with a fraction, else 1.0E-5, 1.23E10)."""
    _, digits, exponent = Decimal(repr(x)).as_tuple()
    d = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + exponent  # digits before the decimal point
    if 1e-3 <= x < 1e7:
        whole, frac = (d[:point].ljust(point, "0"), d[point:]) if point > 0 else ("0", "0" * -point + d)
        return f"{whole or '0'}.{frac or '0'}"
    return f"{d[0]}.{d[1:] or '0'}E{point - 1}"


def test_values_sent_as_text_are_stored_as_they_came_and_read_as_the_list_would_be():
    """A group of numbers whose values came as the JSON text of their array (the JVM's form) is
    stored with that text as it is; readers get the same values, of the same types, as from the
    list; a text that is not an array of the group's numbers goes the checked way."""
    g = GROUPS["video_engagement"]
    codec = layout.RowCodec(g)
    assert codec.numeric and not layout.RowCodec(GROUPS["video_spikes"]).numeric
    rng = random.Random(3)
    for _ in range(300):
        values = [rng.randint(0, 10**12) if f.dtype == "int" else rng.random() * 10.0 ** rng.randint(-12, 12)
                  for f in g.features]
        text = "[" + ",".join(str(v) if isinstance(v, int) else _java_float(v) for v in values) + "]"
        raw, bad = codec.encode(7, 3, 9, text)
        assert bad == [] and raw.endswith("," + text[1:])  # passed through
        got = codec.decode(raw)
        assert got == (values, 7, 3, 9) and list(map(type, got[0])) == list(map(type, values))
        assert FeatureUpdate(g.name, "v", 7, 3, text).value_list == values
    n = len(g.features)
    ones = ["1"] * n
    # the check is of the shape and the characters, not of each number's type: the JVM writes ints
    # from longs, and a float where an int goes is stored as it came
    assert g.features[0].dtype == "int" and codec.decode(codec.encode(7, 3, 9, "[" + ",".join(["2.5"] + ones[1:]) + "]")[0])[0][0] == 2.5
    bad_texts = {"null": ["null"] + ones[1:], "string": ['"a"'] + ones[1:],
                 "too few": ones[1:], "too many": ones + ["1"]}
    for why, items in bad_texts.items():
        raw, bad = codec.encode(7, 3, 9, "[" + ",".join(items) + "]")
        values = codec.decode(raw)[0]
        assert len(values) == n, why
        if why.startswith("too"):  # not the group's array: every value stored as null
            assert values == [None] * n and len(bad) == n, why
        else:
            assert values[0] is None and values[1:] == [1 if f.dtype == "int" else 1.0 for f in g.features[1:]], why
            assert [name for name, _ in bad] == [g.features[0].name], why
    nan = "[" + ",".join(["NaN"] + ones[1:]) + "]"  # not JSON: no value of it is read
    for text in (nan, "not json", "[]", "[" + ",".join(ones)):
        raw, bad = codec.encode(7, 3, 9, text)
        assert codec.decode(raw)[0] == [None] * n and len(bad) == n, text


def test_updates_with_values_as_text_round_trip_through_records():
    updates = [FeatureUpdate("video_engagement", f"v{i}", i, i, "[" + ",".join([str(i)] * 3) + "]") for i in range(50)]
    back = [u for r in encode_records(updates, max_chars=300) for u in decode_updates(r.encode())]
    assert back == updates and back[4].value_list == [4, 4, 4]
