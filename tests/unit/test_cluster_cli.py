"""The standalone-cluster plumbing that needs no JVM: the `cluster` config section, the generated
Flink configuration, --jobmanager parsing, the remote settings a submitted job is built with, and
the REST client against a fake JobManager."""
from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from stack import flink_rest
from settings.config import REPO_ROOT
from fyp.cluster_cli import PACKAGES, jobmanager_url, latest_snapshot, remote_config, stage_packages
from settings.config import ConfigError, load_config
from stack import flink_cluster


def _cfg(tmp_path, text: str = ""):
    path = tmp_path / "c.yaml"
    path.write_text(f"stack: {{state_dir: {tmp_path}}}\n" + text)
    return load_config(path, env={})


def test_cluster_section_defaults_and_validation(tmp_path):
    cfg = _cfg(tmp_path)
    assert cfg.cluster.rest_port == 18081 and cfg.cluster_dir == tmp_path / "cluster"
    assert cfg.savepoint_dir == tmp_path / "savepoints"
    assert flink_cluster.slots(cfg) == cfg.flink.parallelism
    with pytest.raises(ConfigError, match="cluster.taskmanager_memory"):
        _cfg(tmp_path, "cluster: {taskmanager_memory: lots}\n")
    with pytest.raises(ConfigError, match="distinct ports"):
        _cfg(tmp_path, "cluster: {rest_port: 5000, rpc_port: 5000}\n")
    with pytest.raises(ConfigError, match="unknown key 'cluster.slot'"):
        _cfg(tmp_path, "cluster: {slot: 2}\n")


def test_generated_flink_conf(tmp_path):
    cfg = _cfg(tmp_path, "flink: {parallelism: 3}\ncluster: {rest_port: 28081, rpc_port: 26123, slots: 0}\n")
    conf = flink_cluster.flink_conf(cfg)
    assert conf["rest.port"] == 28081 and conf["jobmanager.rpc.port"] == 26123
    assert conf["taskmanager.numberOfTaskSlots"] == 3
    assert conf["taskmanager.memory.process.size"] == "2560m" and conf["jobmanager.memory.process.size"] == "1g"
    assert conf["python.executable"] == sys.executable  # the venv's, for the Python workers
    assert "--add-opens" in conf["env.java.opts.all"]  # the package's JVM flags for Java 17 are kept
    assert conf["execution.checkpointing.savepoint-dir"] == (tmp_path / "savepoints").as_uri()


def test_jobmanager_address(tmp_path):
    cfg = _cfg(tmp_path, "cluster: {host: 10.0.0.5, rest_port: 8081}\n")
    assert jobmanager_url(cfg, None) == ("http://10.0.0.5:8081", "10.0.0.5", 8081)
    assert jobmanager_url(cfg, "jm.internal:9000") == ("http://jm.internal:9000", "jm.internal", 9000)
    for bad in ("jm.internal", ":9000", "jm:port"):
        with pytest.raises(SystemExit):
            jobmanager_url(cfg, bad)


def test_remote_config_keeps_the_job_settings(tmp_path):
    cfg = _cfg(tmp_path, "flink: {python_worker_mode: loopback, extra: {a.b: c}}\n")
    staged = stage_packages(tmp_path / "stage")
    assert sorted(p.name for p in staged.iterdir()) == sorted(PACKAGES)
    # every package of code at the top of the repo (the workers import across all of them)
    assert {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests", "bench"} == set(PACKAGES)
    assert not list(staged.rglob("__pycache__"))
    remote = remote_config(cfg, "h", 1234, "file:///sp", True, staged)
    x = remote.flink.extra
    assert x["execution.target"] == "remote" and x["rest.address"] == "h" and x["rest.port"] == "1234"
    assert x["python.files"] == str(staged) and x["execution.state-recovery.path"] == "file:///sp"
    assert x["execution.state-recovery.ignore-unclaimed-state"] == "true" and x["a.b"] == "c"
    assert remote.flink.python_worker_mode == "process"  # loopback exists only in-process
    assert cfg.flink.extra == {"a.b": "c"}  # the caller's config is untouched


def test_latest_snapshot_prefers_the_newest_of_checkpoints_and_savepoints(tmp_path):
    import os

    cfg = _cfg(tmp_path)
    assert latest_snapshot(cfg, "engagement") is None
    chk = cfg.checkpoint_dir / "engagement" / "j1" / "chk-7"
    sp = cfg.savepoint_dir / "engagement" / "savepoint-abc-123"
    for d, t in ((chk, 1000), (sp, 2000)):
        d.mkdir(parents=True)
        (d / "_metadata").write_bytes(b"x")
        os.utime(d / "_metadata", (t, t))
    assert latest_snapshot(cfg, "engagement") == sp
    os.utime(chk / "_metadata", (3000, 3000))
    assert latest_snapshot(cfg, "engagement") == chk


class _FakeJobManager(BaseHTTPRequestHandler):
    polls = 0

    def _send(self, code: int, body: dict):
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if self.path == "/jobs/overview":
            self._send(200, {"jobs": [
                {"jid": "a" * 32, "name": "engagement", "state": "FINISHED", "start-time": 1},
                {"jid": "b" * 32, "name": "engagement", "state": "RUNNING", "start-time": 2},
                {"jid": "c" * 32, "name": "trends", "state": "RUNNING", "start-time": 3}]})
        elif self.path.startswith(f"/jobs/{'b' * 32}/savepoints/t1"):
            type(self).polls += 1
            if type(self).polls < 2:
                self._send(200, {"status": {"id": "IN_PROGRESS"}})
            else:
                self._send(200, {"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/savepoint-b-1"}})
        else:
            self._send(404, {"errors": ["Not found: " + self.path]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body == {"targetDirectory": "file:///sp", "drain": False}
        self._send(202, {"request-id": "t1"})

    def log_message(self, *args):
        pass


def test_rest_client_against_a_fake_jobmanager():
    server = HTTPServer(("127.0.0.1", 0), _FakeJobManager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        assert [j["name"] for j in flink_rest.jobs(url)] == ["trends", "engagement", "engagement"]  # newest first
        assert flink_rest.resolve_job(url, "engagement")["jid"] == "b" * 32  # the active one of that name
        assert flink_rest.resolve_job(url, "a" * 32)["state"] == "FINISHED"
        with pytest.raises(flink_rest.RestError, match="no active job named 'interests'"):
            flink_rest.resolve_job(url, "interests")
        assert flink_rest.stop_with_savepoint(url, "b" * 32, "file:///sp", poll=0.01) == "file:/sp/savepoint-b-1"
        with pytest.raises(flink_rest.RestError, match="HTTP 404: Not found"):
            flink_rest.job_state(url, "d" * 32)
    finally:
        server.shutdown()
