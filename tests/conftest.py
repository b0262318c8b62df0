"""Shared fixtures. Integration tests start their own tansu and Redis on free loopback ports, in a
temporary state folder, with the same code `make up` uses; the broker binary and jars come from
the project's artifacts folder (`make setup`)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import yaml

from settings.config import REPO_ROOT, load_config

ARTIFACTS = Path(os.environ.get("FYP_ARTIFACTS_DIR", REPO_ROOT / ".fyp"))


@dataclass
class Stack:
    root: Path
    broker_port: int
    redis_port: int
    next_db: int = 1

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def config(self, name: str, **overrides):
        """A config file for one test: its own topics, consumer group, Redis db and state folder.
        Returns (Config, path to the YAML for subprocesses)."""
        tag = f"{name}-{uuid.uuid4().hex[:6]}"
        self.db = self.next_db  # each test config gets its own, empty Redis database
        self.next_db = self.next_db % 15 + 1
        redis.Redis(port=self.redis_port, db=self.db).flushdb()
        state = self.root / tag
        state.mkdir(parents=True)
        raw = {
            "kafka": {"bootstrap": self.bootstrap, "partitions": 2, "consumer_group": f"g-{tag}",
                      "topics": {k: f"{tag}-{v}" for k, v in {
                          "engagement": "engagement", "uploads": "uploads", "notifications": "notifications",
                          "dead_letter": "dlq", "late": "late", "feature_updates": "updates",
                          "milestone_crossings": "crossings", "spike_transitions": "transitions",
                          "spike_alerts": "alerts"}.items()}},
            "redis": {"url": f"redis://127.0.0.1:{self.redis_port}/{self.db}"},
            "stack": {"state_dir": str(state), "artifacts_dir": str(ARTIFACTS),
                      "broker_port": self.broker_port, "redis_port": self.redis_port},
            # c1: the JIT that gets the tests' short jobs going sooner (docs/testing.md)
            "flink": {"parallelism": 2, "checkpoint_interval": "2s", "watermark_emit": "on-event", "local_jit": "c1"},
        }
        for dotted, value in overrides.items():
            node = raw
            parts = dotted.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value
        path = state / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        cfg = load_config(path, env={})
        from stack.local import ensure_topics

        ensure_topics(cfg)
        return cfg, path

    def redis(self, cfg=None) -> redis.Redis:
        return redis.Redis.from_url(cfg.redis.url) if cfg else redis.Redis(port=self.redis_port, db=self.db)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from stack import artifacts, daemons

    arts = artifacts.ensure_all(ARTIFACTS)
    root = tmp_path_factory.mktemp("stack")
    s = Stack(root, daemons.free_port(), daemons.free_port())
    (root / "redis").mkdir()
    svcs = [daemons.tansu_service(arts["tansu"], s.broker_port), daemons.redis_service(s.redis_port, root / "redis")]
    for svc in svcs:
        daemons.start(svc, root)
    yield s
    for svc in svcs:
        daemons.stop(svc, root)


def fyp_command(config_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "fyp.cli", "--config", str(config_path), *args]


def start_fyp(config_path: Path, *args: str, log: Path) -> subprocess.Popen:
    """Starts `fyp ...` in its own process group (so a test can kill it and its JVM hard)."""
    return subprocess.Popen(fyp_command(config_path, *args), stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=REPO_ROOT)


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    """SIGKILL: the whole process group at once (a crash). SIGTERM: an orderly stop of `fyp`."""
    from stack.procs import stop_group_leader

    if sig == signal.SIGTERM:
        stop_group_leader(proc)
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    """Calls `condition()` until it returns something true, and returns that; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout}s: {what}")


def wait_for_no_problems(check, timeout: float, interval: float = 2.0, what: str = "condition") -> float:
    """Calls `check()` (a list of problems) until it returns none; returns the seconds it took."""
    start = time.monotonic()
    problems = ["not checked"]
    while time.monotonic() - start < timeout:
        problems = check()
        if not problems:
            return time.monotonic() - start
        time.sleep(interval)
    shown = "\n".join(map(str, problems[:20]))
    raise AssertionError(f"{what}: still {len(problems)} problems after {timeout}s:\n{shown}")


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own, to stop and restart."""
    from stack import daemons

    port = daemons.free_port()
    svc = daemons.redis_service(port, tmp_path)
    pid = daemons.start(svc, tmp_path)
    state = {"svc": svc, "root": tmp_path, "port": port, "pid": pid}
    yield state
    try:
        os.kill(state["pid"], signal.SIGCONT)
    except ProcessLookupError:
        pass
    daemons.stop(svc, tmp_path)


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test's own (memory storage), to stall and resume."""
    from stack import artifacts, daemons

    arts = artifacts.ensure_all(ARTIFACTS)
    port = daemons.free_port()
    root = tmp_path / "broker"
    svc = daemons.tansu_service(arts["tansu"], port)
    pid = daemons.start(svc, root)
    yield {"bootstrap": f"127.0.0.1:{port}", "pid": pid}
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    daemons.stop(svc, root)
