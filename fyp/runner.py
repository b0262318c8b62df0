"""Running a job with its feature writer: streaming (until stopped) or a bounded backfill."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import orjson

from featurestore.writer import FeatureWriter
from stack import procs
from stack.artifacts import job_jars
from settings.config import Config
from settings.connections import redis_client
from settings.kafka_clients import client_config
from jobs import engagement, features, front, interests, milestones, spikes, trends
from jobs.flink_env import set_local_jvm_options, latest_checkpoint
from jobs.keyed import NO_END, jvm_with_jars
from operators.sliding_tiles import TileGeometry
from schemas.engagement import ENGAGEMENT_V1, EVENT_TIME_FIELD
from operators.feature_groups import groups_for
from services.feature_writer import FeatureUpdateConsumer
from services.gc_policy import rare_full_collections
from services.partition_reader import EndMarkerError, send_end_markers

log = logging.getLogger("fyp.run")
JOBS = {"features": features, "engagement": engagement, "interests": interests, "trends": trends,
        "milestones": milestones, "spikes": spikes}


def writer_group(cfg: Config) -> str:
    return f"{cfg.kafka.consumer_group}-writer"


def make_writer(cfg: Config) -> FeatureUpdateConsumer:
    rare_full_collections()  # this process hosts the writer (services/gc_policy.py)
    groups = groups_for(cfg)
    writer = FeatureWriter(redis_client(cfg, "writer"), groups, {g: cfg.ttl_ms(g) for g in groups})
    w = cfg.featurestore.writer
    offline_log = None
    if cfg.offline.enabled:
        from featurestore.offline_log import OfflineLog, OfflineLogError

        try:
            offline_log = OfflineLog(cfg.offline_root, groups, cfg.offline.flush_rows, cfg.offline.flush_interval)
        except OfflineLogError as e:
            # Several jobs of one config each run a writer over the same topic; the first one
            # to start logs for all of them (every writer sees every update). Not an error.
            log.warning("%s; this writer stores to Redis only", e)
    try:
        return FeatureUpdateConsumer(client_config(cfg.kafka), cfg.kafka.topics.feature_updates, writer_group(cfg), writer,
                                     batch_max=w.batch_max, poll_timeout_ms=w.poll_timeout,
                                     fetch_ahead_kb=w.fetch_ahead_kb,
                                     backoff_max_ms=w.retry_backoff_max, offline_log=offline_log)
    except BaseException:
        if offline_log is not None:
            offline_log.close()  # nothing buffered yet: just releases the log for the next try
        raise


def make_notifier(cfg: Config):
    from services.notifier import MilestoneNotifier

    t = cfg.kafka.topics
    return MilestoneNotifier(client_config(cfg.kafka), t.milestone_crossings, t.notifications, redis_client(cfg),
                             f"{cfg.kafka.consumer_group}-notifier", cfg.ttl_ms("video_milestones"))


def make_services(cfg: Config, job: str) -> list:
    """The services beside the job that take its output: the feature writer; for milestones the
    notifier instead; for spikes also the alerter; for the combined job all three."""
    if job == "features":
        from services.alerts.alerter import make_alerter

        return [make_writer(cfg), make_notifier(cfg), make_alerter(cfg)]
    if job == "milestones":
        return [make_notifier(cfg)]
    if job == "spikes":
        from services.alerts.alerter import make_alerter

        return [make_writer(cfg), make_alerter(cfg)]
    return [make_writer(cfg)]


def _job_module(job: str):
    if job not in JOBS:
        raise SystemExit(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    return JOBS[job]


class _Stopper:
    def __init__(self):
        self.event = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.event.set())


def _job_state(client) -> str:
    return str(client.get_job_status().result()).split(".")[-1]


def _stop_gateway() -> None:
    """PyFlink's gateway JVM (and its Python workers) outlive this process otherwise. Once it is
    gone, py4j objects still alive at interpreter exit log connection errors: silence them."""
    procs.terminate_descendants(os.getpid())
    logging.disable(logging.CRITICAL)


def _metrics_rest(cfg: Config) -> str | None:
    """With a metrics endpoint, the mini-cluster serves its REST API on a known port (the
    exporter reads the job's metrics there): flink.extra's rest.port, observability's, or a free one."""
    if not cfg.observability.port:
        return None
    from stack.daemons import free_port

    port = cfg.flink.extra.get("rest.port") or cfg.observability.flink_rest_port or free_port()
    cfg.flink.extra["rest.port"] = str(port)
    return f"http://127.0.0.1:{port}"


def start_metrics(cfg: Config, job: str, services: list, rest_url: str | None, job_name: str | None) -> None:
    """The process's /metrics: its services' counters and, given a REST URL, the Flink job's."""
    if not cfg.observability.port:
        return
    from services.observability.exporter import start_exporter
    from services.observability.flink_metrics import FlinkJobCollector
    from services.observability.service_metrics import ServiceCollector

    collectors = [ServiceCollector(services, job)]
    if rest_url and job_name:
        collectors.append(FlinkJobCollector(rest_url, job, job_name))
    start_exporter(cfg.observability.port, collectors, cfg.observability.host)


def run_streaming(cfg: Config, job: str, fresh: bool = False, with_writer: bool = True) -> None:
    module = _job_module(job)
    restore = None if fresh else latest_checkpoint(cfg.checkpoint_dir / module.JOB_NAME)
    print(f"starting {job} " + ( f"from checkpoint {restore}" if restore else "with fresh state"), flush=True)
    rest_url = _metrics_rest(cfg)
    handle = front.start(module.build(cfg, restore_from=restore))
    stopper = _Stopper()
    services = make_services(cfg, job) if with_writer else []
    start_metrics(cfg, job, services, rest_url, module.JOB_NAME)
    threads = [threading.Thread(target=s.run, args=(stopper.event,), daemon=True) for s in services]
    for thread in threads:
        thread.start()
    print(f"{job}: running as Flink job {handle.client.get_job_id()}; Ctrl-C stops it "
          f"(checkpoints under {cfg.checkpoint_dir})", flush=True)
    try:
        while not stopper.event.wait(1.0):
            state = _job_state(handle.client)
            if state in ("FAILED", "CANCELED", "FINISHED"):
                raise SystemExit(f"{job}: Flink job ended: {state}")
    finally:
        stopper.event.set()
        try:
            handle.client.cancel().result()
        except Exception:
            pass
        for thread, service in zip(threads, services):
            thread.join(timeout=10)
            service.close()
        _stop_gateway()


def end_of_input_as_of(cfg: Config, path: str | Path) -> int | None:
    """As-of time of a bounded input's final features: the end of the step holding its newest
    valid event. The file is read in the driver's JVM, each record validated by the job's own
    schema code (jobs/jvm NewestEventTime): in Python this pass cost about 13 µs a line."""
    set_local_jvm_options(cfg, bounded=True)  # this may be the first use of the JVM that will run the job
    newest = jvm_with_jars(job_jars(cfg.artifacts_dir)).dev.fyp.udf.NewestEventTime.of(
        str(Path(path).resolve()), EVENT_TIME_FIELD, ENGAGEMENT_V1.descriptor_json())
    if newest == NO_END:
        return None
    e = cfg.engagement
    return TileGeometry(e.tile, e.emit_interval, tuple(e.window_ms)).step_end(newest)


def run_backfill(cfg: Config, job: str, input_path: str, uploads_path: str | None = None) -> dict:
    """Runs the job over a file to its end, then has its services read everything it wrote: an
    end marker goes to every partition of each service's topic once the job has finished, and the
    backfill ends when each service has passed them all (no idle timer). Returns the stats. Jobs
    that enrich views with video metadata read it from `uploads_path` (JSON lines)."""
    module = _job_module(job)
    for path in (input_path, uploads_path):
        if path is not None and not Path(path).exists():
            raise SystemExit(f"input not found: {path}")
    as_of = None
    if job in ("engagement", "trends", "features"):
        step_end = end_of_input_as_of(cfg, input_path)
        minute_end = None if step_end is None else -(-step_end // 60_000) * 60_000
    if job == "engagement":
        as_of = step_end
        handle = front.start(engagement.build(cfg, input_file=input_path, end_of_input_as_of=as_of))
    elif job == "trends":
        as_of = minute_end
        handle = front.start(trends.build(cfg, input_file=input_path, end_of_input_as_of=as_of))
    elif job == "features":
        if uploads_path is None:
            raise SystemExit("backfill features needs --uploads FILE (upload events, JSON lines)")
        as_of = step_end
        handle = front.start(features.build(cfg, input_file=input_path, uploads_file=uploads_path,
                                            end_of_input_as_of=step_end, trends_as_of=minute_end))
    else:
        if uploads_path is None:
            raise SystemExit(f"backfill {job} needs --uploads FILE (upload events, JSON lines)")
        handle = front.start(module.build(cfg, input_file=input_path, uploads_file=uploads_path))
    services = make_services(cfg, job)
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in services]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    job_seconds = None
    try:
        result = handle.client.get_job_execution_result().result()
        job_seconds = result.get_net_runtime() / 1000
    finally:
        stop.set()
    run_id = f"{handle.name}-{uuid.uuid4().hex[:12]}"
    try:
        for service in services:
            send_end_markers(service.reader.kafka, service.reader.topic, run_id)
    except EndMarkerError as e:
        raise SystemExit(f"backfill {job}: the job finished, but its end cannot be marked, so whether every "
                         f"update reached Redis cannot be shown: {e}") from None
    print(f"{job}: job finished in {job_seconds:.1f}s; services reading to the end markers of {run_id}", flush=True)
    for thread in threads:
        # no timeout: a service blocked on Redis finishes its batch first, or the drain below
        # would use its consumer and writer from a second thread
        thread.join()
    for service in services:
        service.drain(run_id)
        service.close()
    _stop_gateway()
    stats = {k: v for s in reversed(services) for k, v in s.stats.items()}
    stats.update(services[0].stats, seconds=round(time.monotonic() - started, 1), job_seconds=job_seconds,
                 as_of=as_of, run_id=run_id)
    print(orjson.dumps(stats).decode(), flush=True)
    return stats
