from pathlib import Path

import pytest

from schemas.durations import parse_duration_ms
from settings.config import ConfigError, load_config

LOCAL = Path(__file__).resolve().parents[2] / "configs" / "local.yaml"


def test_local_config_loads():
    cfg = load_config(LOCAL, env={})
    assert cfg.engagement.window_ms == [3_600_000, 21_600_000, 86_400_000]
    assert cfg.engagement.tile == 60_000 and cfg.engagement.emit_interval == 1000


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("engagement:\n  tile_size: 1m\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert "engagement.tile_size" in str(e.value) and str(p) in str(e.value)


def test_mistyped_value_is_refused(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("flink:\n  parallelism: two\n")
    with pytest.raises(ConfigError, match="flink.parallelism"):
        load_config(p, env={})


def test_environment_overrides_connections():
    cfg = load_config(LOCAL, env={"FYP_REDIS_URL": "redis://h:1/2", "FYP_KAFKA_BOOTSTRAP": "h:9"})
    assert cfg.redis.url == "redis://h:1/2" and cfg.kafka.bootstrap == "h:9"


def test_window_must_be_whole_tiles(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("engagement:\n  tile: 45s\n  windows: [1h]\n")
    load_config(p, env={})
    p.write_text("engagement:\n  tile: 7m\n")
    with pytest.raises(ConfigError):
        load_config(p, env={})


def test_durations():
    assert parse_duration_ms("500ms", "x") == 500 and parse_duration_ms("24h", "x") == 86_400_000
    with pytest.raises(ValueError, match="x: expected a duration"):
        parse_duration_ms("soon", "x")


def test_allowed_lateness_must_fit_in_the_longest_window(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("engagement:\n  allowed_lateness: 2d\n")
    with pytest.raises(ConfigError, match="allowed_lateness"):
        load_config(p, env={})


def test_production_example_loads_without_secrets_in_it():
    from settings.config import REPO_ROOT

    path = REPO_ROOT / "configs" / "production.example.yaml"
    cfg = load_config(path, env={})
    assert cfg.redis.url.startswith("rediss://") and cfg.redis.writer_user and cfg.redis.reader_user
    assert cfg.kafka.security.protocol == "SASL_SSL" and cfg.kafka.security.sasl_username
    text = path.read_text().lower()
    assert "password:" not in text and "secret:" not in text  # secrets come from the environment only


def test_a_climbing_rise_needs_its_views_of_rise_window_intervals_before_in_the_history(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("spikes:\n  rise_window: 58\n  history: 60\n")
    with pytest.raises(ConfigError, match="climb_growth"):
        load_config(p, env={})
    p.write_text("spikes:\n  rise_window: 58\n  history: 60\n  climb_growth: 0\n")
    assert load_config(p, env={}).spikes.rise_window == 58
