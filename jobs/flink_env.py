"""Builds the Flink environment a job runs in: embedded mini-cluster by default (or whatever
cluster the process is submitted to), the project's jars, the venv's Python for the workers, and
checkpoints on the filesystem so state of any size survives a restart."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from settings.config import Config
from stack.artifacts import job_jars


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest completed checkpoint (a chk-N folder with _metadata) under checkpoint_dir."""
    best = None
    for meta in checkpoint_dir.glob("*/chk-*/_metadata"):
        n = int(meta.parent.name.split("-")[1])
        if best is None or (meta.stat().st_mtime, n) > best[0]:
            best = ((meta.stat().st_mtime, n), meta.parent)
    return best[1] if best else None


def flink_settings(cfg: Config, job_name: str, streaming_checkpoints: bool, restore_from: Path | None) -> dict:
    f = cfg.flink
    conf = {
        "pipeline.name": job_name,
        "pipeline.jars": ";".join(p.resolve().as_uri() for p in job_jars(cfg.artifacts_dir)),
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "parallelism.default": str(f.parallelism),
        "python.fn-execution.bundle.time": str(f.bundle_time),
        "python.fn-execution.bundle.size": str(f.bundle_size),
        "python.state.cache-size": str(f.state_cache_size),
        "table.local-time-zone": "UTC",
        "pipeline.auto-watermark-interval": f"{f.watermark_interval} ms",
        "execution.buffer-timeout.interval": f"{f.buffer_timeout} ms",
        # Chained operators pass records on without a defensive copy (measured: the engagement
        # backfill's copies between chained SQL operators were a third of its CPU). Safe here: the
        # SQL runtime's operators are written for reuse (batch mode always runs with it), and the
        # Java functions of jobs/jvm read their input rows' fields and keep no row.
        "pipeline.object-reuse": "true",
    }
    # No table.exec.state.ttl: Flink's state TTL runs on processing time, so a backfill (fast) and
    # a live run (slow) would forget metadata and running totals at different points of the
    # stream. Non-window SQL state (per-video metadata and totals) grows with the catalog instead.
    if f.source_idle_timeout:
        conf["table.exec.source.idle-timeout"] = f"{f.source_idle_timeout} ms"
    if streaming_checkpoints:
        conf.update({
            "execution.checkpointing.interval": f"{f.checkpoint_interval} ms",
            "execution.checkpointing.storage": "filesystem",
            "execution.checkpointing.dir": (cfg.checkpoint_dir / job_name).resolve().as_uri(),
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            "execution.checkpointing.num-retained": "2",
            "execution.checkpointing.min-pause": "1 s",
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "1000000",
            "restart-strategy.fixed-delay.delay": "2 s",
        })
    if restore_from is not None:
        conf["execution.state-recovery.path"] = restore_from.resolve().as_uri()
    conf.update({k: str(v) for k, v in f.extra.items()})
    return conf


GC_OPTIONS = {"parallel": "-XX:+UseParallelGC", "g1": "-XX:+UseG1GC"}
# lean-c2: the optimizing compiler takes a method only after 3x the JDK's calls and loops, and
# inlines less deeply (9 levels, not 15) and less per call site (200 bytecodes, not 325), so it
# compiles fewer and smaller methods. WHY: every job's SQL operators are new generated classes that
# the JIT compiles afresh, and on 2 cores its compilers took as much CPU as the job's own threads
# (docs/benchmarks.md, CPU by thread).
JIT_OPTIONS = {
    "lean-c2": " -XX:Tier4InvocationThreshold=15000 -XX:Tier4CompileThreshold=45000 -XX:MaxInlineLevel=9"
               " -XX:FreqInlineSize=200",
    "tiered": "",
    "c1": " -XX:TieredStopAtLevel=1",
}


def jit_of(cfg: Config, bounded: bool) -> str:
    """The JIT the local JVM runs with: flink.local_jit, where "auto" is lean-c2 for a bounded job
    (a backfill: throughput) and tiered for a streaming one (its steady state is what freshness is
    measured on, and four alternating pairs at 20K events/s gave lean-c2 no better p99)."""
    jit = cfg.flink.local_jit
    if jit == "auto":
        return "lean-c2" if bounded else "tiered"
    return jit


def set_local_jvm_options(cfg: Config, bounded: bool) -> None:
    """Sets the heap and the garbage collector of the JVM PyFlink starts for this process (on its
    first use: later calls change nothing) to `flink.local_heap` and `flink.local_gc`, and its JIT
    to `flink.local_jit` (`jit_of`; `bounded`: the job reads files to their end), unless JVM_ARGS
    is already set."""
    f = cfg.flink
    os.environ.setdefault("JVM_ARGS",
                          f"-Xmx{f.local_heap} {GC_OPTIONS[f.local_gc]}{JIT_OPTIONS[jit_of(cfg, bounded)]}")


def create_environments(cfg: Config, job_name: str, streaming_checkpoints: bool, restore_from: Path | None = None):
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    # PyFlink runs Python functions inside this (driver) process on a local mini-cluster
    # ("loopback"), where every subtask shares one GIL. Separate worker processes use every core.
    os.environ["_python_worker_execution_mode"] = cfg.flink.python_worker_mode
    set_local_jvm_options(cfg, bounded=not streaming_checkpoints)
    conf = Configuration()
    for k, v in flink_settings(cfg, job_name, streaming_checkpoints, restore_from).items():
        conf.set_string(k, v)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    t_env = StreamTableEnvironment.create(env, EnvironmentSettings.new_instance().in_streaming_mode()
                                          .with_configuration(conf).build())
    return env, t_env
