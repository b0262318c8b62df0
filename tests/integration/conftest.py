"""Fixtures of the integration tests beyond the broker and Redis of tests/conftest.py."""
from __future__ import annotations

import time

import pytest

from stack import flink_cluster
from stack.daemons import free_port


@pytest.fixture(scope="session")
def cluster(stack):
    """A cluster on free ports in the stack's temporary folder, stopped even when a test fails.
    Returns the config overrides that point a test's config at it."""
    overrides = {"cluster.rest_port": free_port(), "cluster.rpc_port": free_port()}
    cfg, _ = stack.config("flink-cluster", **overrides)
    overrides["cluster.dir"] = str(cfg.cluster_dir)
    started = time.monotonic()
    try:
        ov = flink_cluster.up(cfg, timeout_s=180)
        assert ov["taskmanagers"] == 1 and ov["slots-total"] == cfg.flink.parallelism
        print(f"cluster up in {time.monotonic() - started:.1f}s")
        yield overrides
    finally:
        stopped = flink_cluster.down(cfg)
        assert not any(flink_cluster.daemon_pids(cfg).values()), "a cluster daemon survived `down`"
        print(f"cluster down: {stopped}")
