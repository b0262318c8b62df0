"""The durable broker option's config, credentials and service definitions (no processes)."""
from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest

from settings.config import ConfigError, load_config
from stack import local, s3

LOCAL = Path(__file__).resolve().parents[2] / "configs" / "local.yaml"


def test_broker_storage_defaults_to_memory_and_s3_keys_are_validated():
    cfg = load_config(LOCAL, env={})
    assert cfg.stack.broker_storage == "memory" and cfg.stack.s3_bucket == "tansu"
    assert cfg.seaweedfs_dir == cfg.state_dir / "seaweedfs"
    assert load_config(LOCAL, env={"FYP_BROKER_STORAGE": "s3"}).stack.broker_storage == "s3"
    for overrides, match in [({"stack.broker_storage": "disk"}, "broker_storage"),
                             ({"stack.s3_bucket": "Bad_Bucket"}, "s3_bucket"),
                             ({"stack.seaweedfs_internal_ports": 65530}, "seaweedfs_internal_ports"),
                             ({"stack.broker_storage": "s3", "stack.seaweedfs_port": 18342}, "overlap"),
                             ({"stack.broker_storage": "s3", "stack.broker_port": 18340}, "overlap")]:
        with pytest.raises(ConfigError, match=match):
            load_config(LOCAL, overrides=overrides, env={})


def test_sigv4_matches_the_aws_examples():
    creds = s3.Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    when = dt.datetime(2013, 5, 24, tzinfo=dt.timezone.utc)
    for url, signature in [
            ("https://examplebucket.s3.amazonaws.com/?lifecycle",
             "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
            ("https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
             "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")]:
        h = s3.sign("GET", url, creds, now=when)
        assert h["authorization"].endswith(f"Signature={signature}")
    assert "wJalr" not in repr(creds)


def test_credentials_from_the_environment_or_generated_once_and_private(tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
    assert local.s3_credentials(tmp_path / "a", env=env) == s3.Credentials("id", "secret")
    assert not (tmp_path / "a").exists()
    assert local.s3_credentials(tmp_path / "b", env={}, create=False) is None
    first = local.s3_credentials(tmp_path / "b", env={})
    assert local.s3_credentials(tmp_path / "b", env={}) == first and len(first.secret_key) >= 30
    assert stat.S_IMODE((tmp_path / "b" / local.CREDENTIALS_FILE).stat().st_mode) == 0o600


def test_s3_stack_runs_seaweedfs_first_with_tansu_on_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "ambient")  # never handed on
    cfg = load_config(LOCAL, overrides={"stack.state_dir": str(tmp_path), "stack.broker_storage": "s3"}, env={})
    assert [s.name for s in local.stack_services(cfg)] == ["seaweedfs", "tansu", "redis"]
    assert not cfg.seaweedfs_dir.exists()  # status/down create nothing
    weed, tansu, _ = local.stack_services(cfg, create_credentials=True)
    creds = local.s3_credentials(cfg.seaweedfs_dir, env={})
    assert tansu.argv[-1] == "s3://tansu/" and tansu.env["AWS_ENDPOINT"] == "http://127.0.0.1:18333"
    assert tansu.env["AWS_SECRET_ACCESS_KEY"] == weed.env["AWS_SECRET_ACCESS_KEY"] == creds.secret_key
    assert "AWS_SESSION_TOKEN" not in tansu.env and "AWS_SESSION_TOKEN" not in weed.env
    assert creds.secret_key not in repr(weed) + repr(tansu) + " ".join(weed.argv + tansu.argv)
    assert weed.port == 18333 and weed.other_ports == tuple(range(18340, 18347))
    assert all("127.0.0.1" in a for a in weed.argv if a.startswith("-ip"))
    memory = load_config(LOCAL, overrides={"stack.state_dir": str(tmp_path)}, env={})
    assert [s.name for s in local.stack_services(memory)] == ["tansu", "redis"]
    assert local.stack_services(memory)[0].argv[-1] == "memory://tansu/"
