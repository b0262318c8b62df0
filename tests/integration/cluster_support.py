"""The standalone Flink cluster in tests: helpers that drive it with `fyp`, as a data engineer
would. The cluster itself is the session fixture `cluster` (tests/integration/conftest.py), shared
by every test module that runs jobs on it."""
from __future__ import annotations

import re
import subprocess
import time

from stack import flink_rest
from settings.config import REPO_ROOT
from tests.conftest import fyp_command


def jobmanager(cfg) -> str:
    return f"{cfg.cluster.host}:{cfg.cluster.rest_port}"


def fyp(path, *args, timeout: float = 240) -> str:
    """Runs `fyp ...` to its end; returns its output (fails the test on a non-zero exit)."""
    got = subprocess.run(fyp_command(path, *args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    out = got.stdout + got.stderr
    assert got.returncode == 0, f"fyp {' '.join(args)} exited {got.returncode}:\n{out[-3000:]}"
    return out


def submitted_id(out: str) -> str:
    m = re.search(r"^job id: ([0-9a-f]{32})$", out, re.M)
    assert m, f"no job id in the output of fyp submit:\n{out[-2000:]}"
    return m.group(1)


def wait_state(cfg, job_id: str, states: tuple, timeout: float = 90) -> str:
    url = f"http://{jobmanager(cfg)}"
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = flink_rest.job_state(url, job_id)
        if state in states:
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} is {state}, not {states}, after {timeout}s")


def cancel_quietly(cfg, path, job_id: str | None) -> None:
    if job_id is None:
        return
    url = f"http://{jobmanager(cfg)}"
    try:
        if flink_rest.job_state(url, job_id) in flink_rest.ACTIVE_STATES:
            fyp(path, "cancel", job_id, "--jobmanager", jobmanager(cfg), timeout=60)
        wait_state(cfg, job_id, ("CANCELED", "FINISHED", "FAILED"), timeout=60)  # its slots are free again
    except (AssertionError, flink_rest.RestError) as e:
        print(f"cleanup of {job_id}: {e}")
