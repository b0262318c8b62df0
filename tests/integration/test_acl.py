"""Redis ACL users on a real Redis: after `fyp acl apply` the writer writes features, the reader
reads them and cannot write or run anything else, and a wrong password is refused with a clear
error that names the user and the variable, never the password."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis
import yaml

from featurestore import layout
from featurestore.updates import FeatureUpdate
from featurestore.writer import FeatureWriter
from settings.config import REPO_ROOT, load_config
from settings.connections import RedisAccessError, feature_client, redis_client
from operators.feature_groups import groups_for

pytestmark = pytest.mark.integration

WRITER_PW, READER_PW = "w-secret-7f3a", "r-secret-91bc"


def fyp(cfg_path, *args, env_extra: dict):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "fyp.cli", "--config", str(cfg_path), *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def acl_store(own_redis, tmp_path, monkeypatch):
    path = tmp_path / "acl.yaml"
    path.write_text(yaml.safe_dump({"redis": {"url": f"redis://127.0.0.1:{own_redis['port']}/0",
                                              "writer_user": "fyp-writer", "reader_user": "fyp-reader"}}))
    env = {"FYP_REDIS_WRITER_PASSWORD": WRITER_PW, "FYP_REDIS_READER_PASSWORD": READER_PW}
    applied = fyp(path, "acl", "apply", env_extra=env)
    assert applied.returncode == 0 and "fyp-writer, fyp-reader" in applied.stdout, applied.stderr
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return load_config(path, env={}), path


def test_writer_writes_reader_reads_and_nothing_more(acl_store):
    cfg, _ = acl_store
    groups = groups_for(cfg)
    writer_conn = redis_client(cfg, "writer")
    writer = FeatureWriter(writer_conn, groups, {g: cfg.ttl_ms(g) for g in groups})
    eg = groups["video_engagement"]
    assert writer.write([FeatureUpdate("video_engagement", "v1", 1000, 3, list(range(len(eg.features))))],
                        {"t:0": 4}, "w") == 1
    assert writer.read_offsets("w") == {"t:0": 4}

    r = feature_client(cfg).get(videos=["v1"], video_features=["views_1h", "likes_1h"])
    assert not r.degraded and r.videos["v1"].values == {"views_1h": 0, "likes_1h": 1}

    reader_conn = redis_client(cfg, "reader")
    key = layout.entity_key("video_engagement", "v1")
    for attempt in (lambda: reader_conn.set(key, "999"),
                    lambda: reader_conn.hset(key, "views_1h", 999),
                    lambda: reader_conn.delete(key),
                    lambda: reader_conn.pexpire(key, 1),
                    lambda: reader_conn.eval("return redis.call('SET', KEYS[1], '1')", 1, key),
                    lambda: reader_conn.flushall(),
                    lambda: reader_conn.config_get("*"),
                    lambda: reader_conn.keys("*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    admin = redis.Redis(port=int(cfg.redis.url.split(":")[2].split("/")[0]))
    assert layout.decode_row(eg, admin.get(key))[:3] == (list(range(len(eg.features))), 1000, 3)

    for attempt in (lambda: writer_conn.flushall(),  # the writer is confined too
                    lambda: writer_conn.hset("other:key", "a", 1),
                    lambda: writer_conn.set("other:key", "1"),
                    lambda: writer_conn.config_set("save", ""),
                    lambda: writer_conn.keys("*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()


def test_wrong_password_is_refused_clearly(acl_store, monkeypatch):
    cfg, path = acl_store
    monkeypatch.setenv("FYP_REDIS_READER_PASSWORD", "not-the-password")
    with pytest.raises(RedisAccessError) as err:
        feature_client(cfg)
    msg = str(err.value)
    assert "fyp-reader" in msg and "FYP_REDIS_READER_PASSWORD" in msg and "not-the-password" not in msg

    monkeypatch.delenv("FYP_REDIS_WRITER_PASSWORD")
    with pytest.raises(RedisAccessError, match="FYP_REDIS_WRITER_PASSWORD is not set"):
        redis_client(cfg, "writer")

    # the reader's credentials cannot pass as the writer's
    monkeypatch.setenv("FYP_REDIS_WRITER_PASSWORD", READER_PW)
    with pytest.raises(RedisAccessError, match="fyp-writer"):
        redis_client(cfg, "writer")

    # and the command line says it in one line, without a traceback or the password
    out = fyp(path, "features", "get", "video", "v1", env_extra={"FYP_REDIS_READER_PASSWORD": "nope-nope"})
    assert out.returncode != 0
    assert "Redis refused the reader login as user 'fyp-reader'" in out.stderr and "Traceback" not in out.stderr
    assert "nope-nope" not in out.stderr + out.stdout
