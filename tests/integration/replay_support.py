"""Running one family's job the four ways a replay test compares: a backfill over files, twice, and
a stream that catches up a backlog at full speed, twice; each on fresh topics and a fresh Redis
database."""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import orjson

from fyp.generator.output import write_jsonl
from tests.conftest import fyp_command, kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import produce, sentinel_time


def backfill(stack, tmp: Path, job: str, payloads: list, uploads: list | None = None, **overrides):
    """`fyp backfill JOB` over the payloads (and uploads); returns (cfg, the run's stats)."""
    cfg, path = stack.config(f"{job}-backfill", **overrides)
    events = path.parent / "events.jsonl"
    write_jsonl(events, payloads)
    args = ["backfill", job, "--input", str(events)]
    if uploads is not None:
        write_jsonl(path.parent / "uploads.jsonl", [orjson.dumps(u) for u in uploads])
        args += ["--uploads", str(path.parent / "uploads.jsonl")]
    done = subprocess.run(fyp_command(path, *args), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
    return cfg, orjson.loads(done.stdout.decode().strip().splitlines()[-1])


def catch_up(stack, tmp: Path, job: str, payloads: list, newest_ms: int, ready, uploads: list | None = None,
             timeout: float = 300, **overrides):
    """The whole backlog (then a sentinel past `newest_ms` on every partition) is in the topic
    before `fyp run JOB --fresh` starts; waits until `ready(cfg)` reports no problems."""
    cfg, path = stack.config(f"{job}-catchup", **overrides)
    if uploads is not None:
        produce(stack.bootstrap, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in uploads])
    produce(stack.bootstrap, cfg.kafka.topics.engagement, payloads, sentinel_at=sentinel_time(cfg, newest_ms))
    proc = start_fyp(path, "run", job, "--fresh", log=path.parent / "run.log")
    try:
        wait_for_no_problems(lambda: ready(cfg), timeout=timeout, what=f"{job} caught up")
    finally:
        kill_group(proc, signal.SIGTERM)
    return cfg


def differences(a: dict, b: dict, limit: int = 10) -> list[str]:
    """Entities whose stored values differ between two runs (exactly, not within a tolerance)."""
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)} != {b.get(k)}" for k in keys if a.get(k) != b.get(k)][:limit]
