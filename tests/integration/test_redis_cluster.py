"""The store on a real Redis Cluster (three masters started here): the writer's versioned writes and
the client's reads work across nodes, and one entity's groups share a slot (the hash tag)."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
from redis.cluster import RedisCluster

from featurestore import layout
from featurestore.client import FeatureClient
from featurestore.client_settings import ClientSettings
from featurestore.updates import FeatureUpdate
from featurestore.writer import FeatureWriter
from settings.config import load_config
from stack import daemons
from operators.feature_groups import groups_for

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path):
    svcs = []
    try:
        yield _start_cluster(tmp_path, svcs)
    finally:  # also when the start failed half-way: no node outlives the test
        for svc, root in svcs:
            daemons.stop(svc, root)


def _start_cluster(tmp_path, svcs: list) -> RedisCluster:
    ports = [daemons.free_port() for _ in range(3)]
    for p in ports:
        root = tmp_path / str(p)
        root.mkdir()
        base = daemons.redis_service(p, root)
        # the cluster bus on a free port of its own (the default, port + 10000, may be taken or > 65535)
        svc = daemons.Service(f"redis-{p}", base.argv + ["--cluster-enabled", "yes", "--cluster-config-file",
                                                          str(root / "nodes.conf"),
                                                          "--cluster-port", str(daemons.free_port())], p)
        svcs.append((svc, root))
        daemons.start(svc, root)
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "0",
                    "--cluster-yes"], check=True, capture_output=True, timeout=60)
    # every node must see the cluster as ok (each converges on its own after the create)
    deadline = time.monotonic() + 30
    for p in ports:
        node = redis.Redis(port=p)
        while node.cluster("INFO").get("cluster_state") != "ok":
            assert time.monotonic() < deadline, f"node {p} did not see the cluster converge"
            time.sleep(0.1)
    return RedisCluster(host="127.0.0.1", port=ports[0])


def test_writer_and_client_on_a_cluster(cluster):
    cfg = load_config(env={})
    groups = groups_for(cfg)
    writer = FeatureWriter(cluster, groups, {g: cfg.ttl_ms(g) for g in groups})
    eg = groups["video_engagement"]
    ids = [f"v{i}" for i in range(400)]

    def batch(version):
        return [u for i, v in enumerate(ids) for u in (
            FeatureUpdate("video_engagement", v, 1000 * version, version, [i + version] * len(eg.features)),
            FeatureUpdate("video_spikes", v, 1000 * version, version, [0.5, "normal", 0, 1.0, 1.0, i, 1.0]))]
    assert writer.write(batch(2), {"t:0": 10}, "w") == 800
    assert writer.write(batch(1)) == 0  # older versions are refused on every node
    assert writer.read_offsets("w") == {"t:0": 10}

    nodes = {cluster.get_node_from_key(layout.entity_key("video_engagement", v)).name for v in ids}
    assert len(nodes) == 3  # the keys are spread over the cluster ...
    for v in ids:  # ... and one video's groups are on one node, so its reads go together
        assert cluster.keyslot(layout.entity_key("video_engagement", v)) == cluster.keyslot(
            layout.entity_key("video_spikes", v))

    client = FeatureClient(cluster, groups, ClientSettings(cache_ttl=0))
    r = client.get(videos=ids + ["missing"], video_features=["views_1h", "spike_state", "views_last_interval"])
    assert not r.degraded
    for i, v in enumerate(ids):
        assert r.videos[v].values == {"views_1h": i + 2, "spike_state": "normal", "views_last_interval": i}
        assert r.videos[v].as_of == {"video_engagement": 2000, "video_spikes": 2000}
    assert r.videos["missing"].missing == ["views_1h", "spike_state", "views_last_interval"]
