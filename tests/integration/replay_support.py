"""Running one family's job the ways a replay test compares: a backfill over files and a stream that
catches up a backlog at full speed, each once or twice; each on fresh topics and a fresh Redis
database."""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import orjson

from featurestore import layout
from featurestore.reader import FeatureReader
from featurestore.updates import decode_updates
from fyp.generator.output import write_jsonl
from operators.feature_groups import groups_for
from tests.conftest import fyp_command, kill_group, start_fyp, wait_for_no_problems
from stack.daemons import free_port
from tests.integration.engagement_support import SENTINEL_PREFIX, produce, scrape, topic_records


def stored_group(cfg, client, group: str) -> dict:
    """{entity: (as_of, values)} of one feature group as stored, sentinels left out."""
    g = groups_for(cfg)[group]
    ids = [k.decode().split("{", 1)[1][:-1] for k in client.scan_iter(match=layout.entity_key(group, "*"), count=1000)]
    ids = [i for i in ids if not i.startswith(SENTINEL_PREFIX) and i != "u-sentinel"]
    return {r.entity_id: (r.as_of[group], r.values) for r in FeatureReader(client, {group: g}).get(g.entity, ids)}


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


def catch_up(stack, tmp: Path, job: str, payloads: list, sentinel_ms: int, ready, uploads: list | None = None,
             timeout: float = 300, metrics=None, **overrides):
    """The whole backlog, then a sentinel event at `sentinel_ms` on every partition (it moves the
    watermark to where the backfill's input ends), is in the topic before `fyp run JOB --fresh`
    starts; waits until `ready(cfg)` reports no problems, then, given `metrics`, until
    `metrics(the process's /metrics as {name: value})` reports none."""
    if metrics is not None:
        overrides = {**overrides, "observability.port": free_port()}
    cfg, path = stack.config(f"{job}-catchup", **overrides)
    if uploads is not None:
        produce(stack.bootstrap, cfg.kafka.topics.uploads, [orjson.dumps(u) for u in uploads])
    produce(stack.bootstrap, cfg.kafka.topics.engagement, payloads, sentinel_at=sentinel_ms)
    proc = start_fyp(path, "run", job, "--fresh", log=path.parent / "run.log")
    try:
        wait_for_no_problems(lambda: ready(cfg), timeout=timeout, what=f"{job} caught up")
        if metrics is not None:
            wait_for_no_problems(lambda: metrics(scrape(cfg.observability.port)), timeout=60,
                                 what=f"{job}'s metrics")
    finally:
        kill_group(proc, signal.SIGTERM)
    return cfg


def differences(a: dict, b: dict, limit: int = 10) -> list[str]:
    """Keys (entities, or kinds of output) whose stored values differ between two runs (exactly,
    not within a tolerance)."""
    differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    head = [f"{len(differ)} keys differ"] if len(differ) > limit else []
    return head + [f"{k}: {a.get(k)} != {b.get(k)}" for k in differ[:limit]]


def updates_sent(stack, cfg) -> dict:
    """Every feature update a run's job sent, sentinels left out: "update <group> <entity> <as_of>"
    -> its [absorbed, values] (sorted, should an entity have more than one at an as-of time)."""
    out: dict = {}
    for raw, _ in topic_records(stack.bootstrap, cfg.kafka.topics.feature_updates, idle_s=1.0):
        for u in decode_updates(raw):
            if not u.entity_id.startswith(SENTINEL_PREFIX) and u.entity_id != "u-sentinel":
                out.setdefault(f"update {u.group} {u.entity_id} {u.as_of}", []).append(orjson.dumps([u.absorbed, u.value_list]))
    return {k: sorted(v) for k, v in out.items()}


def assert_runs_identical(stack, tmp: Path, job: str, payloads: list, sentinel_ms: int, stored, check,
                          uploads: list | None = None, timeout: float = 300, metrics=None,
                          with_updates: bool = False, repeats: int = 2, **overrides) -> dict:
    """Backfill `repeats` times, then catch up as often; `stored(cfg)` is what a run left (compared
    exactly between runs), `check(stored)` its problems against the oracle (none allowed), `metrics`
    those of a catch-up's /metrics (see catch_up). `with_updates`: every update the job sent is
    compared too (updates_sent), not only the values at the end. Returns the first backfill's."""
    runs = {}

    def result(cfg):
        return {**stored(cfg), **(updates_sent(stack, cfg) if with_updates else {})}

    for k in range(1, repeats + 1):
        cfg, _ = backfill(stack, tmp, job, payloads, uploads, **overrides)
        runs[f"backfill {k}"] = got = result(cfg)
        problems = check(got)
        assert not problems, f"{job} backfill {k}:\n" + "\n".join(map(str, problems[:20]))
    for k in range(1, repeats + 1):
        cfg = catch_up(stack, tmp, job, payloads, sentinel_ms, lambda c: check(stored(c)), uploads, timeout,
                       metrics, **overrides)
        runs[f"catch-up {k}"] = result(cfg)
    first = runs["backfill 1"]
    for name, run in runs.items():
        diff = differences(first, run)
        assert not diff, f"{job}: backfill 1 vs {name}:\n" + "\n".join(diff)
    return first
