import pytest

from featurestore import layout
from featurestore.updates import FeatureUpdate, decode_update, encode_update, latest_per_entity


def test_key_layout_is_versioned_and_hash_tagged():
    assert layout.entity_key("video_engagement", "v1") == "fyp:v1:video_engagement:{v1}"


def test_values_round_trip_exactly():
    for v in (0, 17, -3, 0.1, 1 / 3, 1e-300, 123456.789):
        kind = "int" if isinstance(v, int) else "float"
        assert layout.decode_value(kind, layout.encode_value(v).encode()) == v
    with pytest.raises(ValueError):
        layout.encode_value(float("nan"))


def test_update_codec_and_newest_per_entity():
    a = FeatureUpdate("g", "v1", 1000, 5, [1, 0.5])
    assert decode_update(encode_update(a)) == a
    batch = [a, FeatureUpdate("g", "v1", 1000, 7, [2, 0.5]), FeatureUpdate("g", "v1", 999, 9, [0, 0.0]),
             FeatureUpdate("g", "v2", 5, 1, [1, 1.0])]
    best = {u.entity_id: u for u in latest_per_entity(batch)}
    assert best["v1"].absorbed == 7 and best["v2"].as_of == 5
