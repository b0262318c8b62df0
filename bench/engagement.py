"""Benchmark of the engagement job (or the combined job, --job features) on this machine: Kafka ->
Flink -> feature writer -> Redis.

1. Throughput: a backlog of N events (Zipf over V videos, event time compressed to a live rate)
   sits in the topic; the streaming job starts fresh; we time from the first feature in Redis to
   the last write (and from job start, which includes JVM and Python worker start-up).
2. Freshness: with the job caught up, live traffic at a stated rate with event time = send time,
   plus a probe video with one view every 100 ms; a poller reads the probe's views_1h from Redis
   every 2 ms and records, for each probe view, when Redis first shows it: freshness = that moment
   minus the view's event time.
3. Memory: peak resident memory of the job's process tree (driver, JVM, Python workers), sampled
   every 0.5 s, plus broker and Redis.
4. Checkpoints during the live traffic, from Flink's REST API: when each started, how long it took,
   what it wrote; and for each of the slowest probe views, how long after it was sent the next
   checkpoint started (the heap state is written in full each time, and that takes the cores from
   the job: docs/benchmarks.md).
5. Where a probe view's time goes after its step could close: the probe's updates on the
   feature-updates topic carry the time the job's sink produced them (the records' Kafka
   timestamps), which splits it into the job's part (from the step's end plus the watermark delay
   to the update record) and the writer's (from the record to Redis).
Writes bench/results/engagement.json.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import redis
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from stack import procs
from stack.daemons import free_port
from stack.flink_rest import RestError, checkpoint_stats, running_job_id
from featurestore import layout
from featurestore.reader import FeatureReader
from featurestore.updates import decode_updates
from settings.config import REPO_ROOT, load_config
from fyp.generator import output
from settings.kafka_clients import client_config
from fyp.generator.traffic import TrafficSpec, generate
from stack.local import ensure_topics
from schemas.features import VIDEO_ENGAGEMENT
from operators.feature_groups import groups_for

RESULTS = REPO_ROOT / "bench" / "results"
PROBE = "zz-probe"


def event(video: str, t: int, i: int) -> bytes:
    return orjson.dumps({"event_id": f"b{i}-{t}", "user_id": "u-bench", "video_id": video, "event_time": t,
                         "region": "US", "watch_time_ms": 5000, "video_duration_ms": 10000, "liked": False,
                         "shared": False, "commented": False, "skipped": False})


def bench_config(base: str | None, tag: str, parallelism: int, flink_overrides: dict) -> tuple:
    cfg = load_config(base)
    raw = yaml.safe_load(Path(base or REPO_ROOT / "configs/local.yaml").read_text())
    raw.setdefault("kafka", {})["topics"] = {k: f"bench-{tag}-{v}" for k, v in cfg.kafka.topics.model_dump().items()}
    raw["kafka"]["consumer_group"] = f"bench-{tag}"
    raw.setdefault("flink", {})["parallelism"] = parallelism
    raw["flink"].update(flink_overrides)
    raw["flink"]["checkpoint_dir"] = str(cfg.state_dir / "bench" / tag / "checkpoints")
    # an offline log of the run's own, as a fresh deployment has: in a shared one, a run that
    # crossed an hour merged the hour's files of every earlier run (featurestore/offline_log.py)
    raw.setdefault("offline", {})["root"] = str(cfg.state_dir / "bench" / tag / "offline")
    path = cfg.state_dir / "bench" / tag / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    ensure_topics(cfg)
    return cfg, path


class CheckpointWatch(threading.Thread):
    """The running job's completed checkpoints, read every 2 s from its REST API (the history it
    serves holds only the last few)."""

    def __init__(self, rest_url: str):
        super().__init__(daemon=True)
        self.rest_url = rest_url
        self.stop = threading.Event()
        self.completed: dict = {}  # id -> {"started_ms", "ms", "mb"}

    def run(self):
        while not self.stop.wait(2.0):
            try:
                job = running_job_id(self.rest_url)
                history = checkpoint_stats(self.rest_url, job)["history"] if job else []
            except (RestError, OSError):
                continue  # not up yet, or restarting
            for c in history:
                if c["status"] == "COMPLETED":
                    self.completed[c["id"]] = {"started_ms": c["trigger_timestamp"], "ms": c["end_to_end_duration"],
                                               "mb": round(c["checkpointed_size"] / 1e6, 1)}

    def report(self, from_ms: float, to_ms: float) -> dict:
        during = [c for c in list(self.completed.values()) if from_ms <= c["started_ms"] <= to_ms]
        return {"completed": len(during),
                "ms_median": round(statistics.median(c["ms"] for c in during)) if during else None,
                "ms_max": max((c["ms"] for c in during), default=None),
                "mb_median": statistics.median(c["mb"] for c in during) if during else None}

    def next_start_after(self, ms: float) -> float | None:
        # list(): one C call, so the watch thread cannot change the dict while it is read
        return min((c["started_ms"] for c in list(self.completed.values()) if c["started_ms"] >= ms), default=None)


class MemorySampler(threading.Thread):
    def __init__(self, pids: dict):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak: dict = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            for name, pid in self.pids.items():
                for k, v in procs.tree_rss(pid).items():
                    key = f"{name}.{k}"
                    self.peak[key] = max(self.peak.get(key, 0), v)


def utc(ms: float) -> str:
    """A wall-clock time in ms as UTC, to the ms (as the JVM's `-Xlog:gc:...:time` and Flink's logs
    give times), so slow views can be matched with what the logs say happened then."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")


def cpu_used(trees: dict) -> tuple[float, dict]:
    """(now, CPU seconds used so far per process tree and kind of process, and by this process:
    the live sender and the Redis poller)."""
    used = {f"{name}.{k}": v for name, pid in trees.items() for k, v in procs.tree_cpu_seconds(pid).items()}
    used["bench.sender"] = procs.cpu_seconds(os.getpid())
    return time.monotonic(), used


def cores_between(start: tuple[float, dict], end: tuple[float, dict]) -> dict:
    """Cores used on average between two `cpu_used` readings, per process tree and kind."""
    seconds = end[0] - start[0]
    return {k: round((v - start[1].get(k, 0.0)) / seconds, 2) for k, v in sorted(end[1].items())}


def probe_update_records(cfg) -> list[tuple[int, int]]:
    """(views_1h, the record's Kafka timestamp in ms) of each of the probe's engagement updates on the
    feature-updates topic, in the order they were made (one subtask's, so one partition's). The
    timestamp is the job's: its Kafka sink stamps a record when it produces it."""
    at = groups_for(cfg)[VIDEO_ENGAGEMENT].names.index("views_1h")
    topic = cfg.kafka.topics.feature_updates
    consumer = Consumer(client_config(cfg.kafka, {"group.id": f"bench-probe-{time.time_ns()}",
                                                  "enable.auto.commit": False, "fetch.wait.max.ms": 50}))
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found, quiet = [], 0
        # the topic's end by reading (tansu's ListOffsets answer counts batches, not records)
        while quiet < 3:
            messages = consumer.consume(1000, 1.0)
            quiet = 0 if messages else quiet + 1
            for m in messages:
                if m.error() is None and m.value() and PROBE.encode() in m.value():
                    found += [(u.value_list[at], m.timestamp()[1]) for u in decode_updates(m.value())
                              if u.entity_id == PROBE and u.group == VIDEO_ENGAGEMENT]
        return found
    finally:
        consumer.close()


def writes(client) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


def make_backlog(cfg, args, start_ms: int, seed: int):
    span_ms = int(args.events / args.event_rate * 1000)
    traffic = generate(TrafficSpec(seed=seed, start_ms=start_ms, duration_ms=span_ms, mean_rate=args.event_rate,
                                   videos=args.videos, users=1_000_000, diurnal_amplitude=0.0, new_video_share=0.0,
                                   max_ooo_ms=cfg.engagement.max_out_of_orderness, ooo_share=0.02))
    keys = [ev["video_id"].encode() for ev in traffic.events]
    return traffic.payloads, keys, start_ms + span_ms


def send_backlog(cfg, payloads, keys, newest: int, marker: str) -> None:
    """The backlog, a marker view at its newest event time, and one event per partition past the
    marker's step so that the watermark closes the whole backlog."""
    e = cfg.engagement
    output.send(client_config(cfg.kafka), cfg.kafka.topics.engagement, payloads + [event(marker, newest, 0)],
                keys=keys + [marker.encode()])
    closer = Producer(client_config(cfg.kafka))
    for part in range(cfg.kafka.partitions):
        closer.produce(cfg.kafka.topics.engagement,
                       event("zz-closer", newest + e.max_out_of_orderness + 2 * e.emit_interval, part), partition=part)
    closer.flush(30)


def wait_for_marker(client, job, marker: str, timeout: float, log) -> tuple:
    """Waits until the marker is in Redis and writes have stopped. Returns (first, last) write
    times (monotonic)."""
    key = layout.entity_key(VIDEO_ENGAGEMENT, marker)
    first = last_change = None
    last = writes(client)
    t0 = time.monotonic()
    while True:
        now = time.monotonic()
        w = writes(client)
        if w != last:
            first = first or now
            last_change, last = now, w
        if last_change and client.exists(key) and now - last_change > 2.0:
            return first, last_change
        if job.poll() is not None:
            raise SystemExit(f"job exited: see {log}")
        if now - t0 > timeout:
            raise SystemExit("timed out waiting for the backlog")
        time.sleep(0.05)


def run(args) -> dict:
    tag = str(int(time.time()))
    overrides = {k: v for k, v in (("bundle_time", args.bundle_time), ("bundle_size", args.bundle_size),
                                   ("buffer_timeout", args.buffer_timeout),
                                   ("watermark_interval", args.watermark_interval)) if v}
    rest_port = free_port()
    overrides["extra"] = {**load_config(args.config).flink.extra, "rest.port": str(rest_port)}
    cfg, cfg_path = bench_config(args.config, tag, args.parallelism, overrides)
    checkpoints = CheckpointWatch(f"http://127.0.0.1:{rest_port}")
    client = redis.Redis.from_url(cfg.redis.url)
    client.delete(*(layout.entity_key(VIDEO_ENGAGEMENT, v) for v in (PROBE, "zz-marker-1", "zz-marker-2")))
    # Two backlogs over the same catalog: the first starts the job from cold state (every video
    # is a new key), the second runs against warm state, as a long-running job does.
    base = int(time.time() * 1000) - 600_000
    cold, cold_keys, cold_end = make_backlog(cfg, args, base, seed=1)
    # the second backlog starts past the watermark the first one's closing events set, so none of
    # it arrives late (late events cross into Python one by one, as corrections)
    e = cfg.engagement
    warm, warm_keys, warm_end = make_backlog(cfg, args, cold_end + e.max_out_of_orderness + 4 * e.emit_interval, seed=1)
    send_backlog(cfg, cold, cold_keys, cold_end, "zz-marker-1")
    print(f"backlog: 2 x {len(cold)} events over {args.videos} videos", flush=True)

    log = cfg.state_dir / "bench" / tag / "job.log"
    job = subprocess.Popen([sys.executable, "-m", "fyp.cli", "--config", str(cfg_path), "run", args.job, "--fresh"],
                           stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO_ROOT)
    pids = {"job": job.pid}
    for name in ("tansu", "redis"):
        pf = cfg.state_dir / "run" / f"{name}.pid"
        if pf.exists():
            pids[name] = int(pf.read_text())
    sampler = MemorySampler(pids)
    sampler.start()
    checkpoints.start()
    t_start = time.monotonic()
    result: dict = {}
    try:
        first, last = wait_for_marker(client, job, "zz-marker-1", args.timeout, log)
        result["cold_state"] = {
            "events": len(cold) + 1, "videos_seen": len(set(cold_keys)),
            "seconds_job_start_to_last_write": round(last - t_start, 2),
            "seconds_first_to_last_write": round(last - first, 2),
            "events_per_second": round(len(cold) / (last - first)),
        }
        print(result["cold_state"], flush=True)
        w0 = writes(client)
        t_send = time.monotonic()
        send_backlog(cfg, warm, warm_keys, warm_end, "zz-marker-2")
        _, last = wait_for_marker(client, job, "zz-marker-2", args.timeout, log)
        result["warm_state"] = {
            "events": len(warm) + 1, "videos_seen": len(set(warm_keys)),
            "seconds_send_start_to_last_write": round(last - t_send, 2),
            "events_per_second": round(len(warm) / (last - t_send)),
            "redis_feature_writes": writes(client) - w0,
        }
        print(result["warm_state"], flush=True)
        result["backlog"] = {"job": args.job, "event_time_rate": args.event_rate, "parallelism": args.parallelism,
                             "catalog_videos": args.videos}
        live = LiveTraffic(cfg, args.live_rate, args.live_seconds, args.send_interval_ms / 1000,
                           videos=[k.decode() for k in warm_keys[:50000]], pids=pids)
        live_from = time.time() * 1000
        live.start()
        live.join()
        result["cpu_cores_during_live"] = live.cpu
        result["freshness"] = live.report(checkpoints, probe_update_records(cfg))
        result["checkpoints_during_live"] = checkpoints.report(live_from, time.time() * 1000)
    finally:
        sampler.stop.set()
        checkpoints.stop.set()
        procs.stop_group_leader(job)
    result["memory_peak_mb"] = {k: round(v / 2**20) for k, v in sorted(sampler.peak.items())}
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "platform": platform.platform()}
    e = cfg.engagement
    result["config"] = {"tile_ms": e.tile, "emit_interval_ms": e.emit_interval,
                        "max_out_of_orderness_ms": e.max_out_of_orderness, "bundle_time_ms": cfg.flink.bundle_time,
                        "bundle_size": cfg.flink.bundle_size,
                        "buffer_timeout_ms": cfg.flink.buffer_timeout, "watermark_interval_ms": cfg.flink.watermark_interval, "python_worker_mode": cfg.flink.python_worker_mode}
    return result


# The live sender sends its events in ticks of 20 ms (a tick's events share one event time and leave
# in one produce request). WHY not smaller ticks: the local broker (tansu 0.6.0, memory storage)
# lists every stored batch of a partition on each fetch that returns data and rewrites an index of
# every batch's timestamp on each produce, so its CPU grows with the batches a run has sent: 30 s
# of 20K events/s in ticks of 5 ms took it 0.37-0.40 of a core, in ticks of 20 ms 0.20-0.25, taken
# from the job on the same 2 cores (docs/benchmarks.md).
SEND_INTERVAL_MS = 20


class LiveTraffic(threading.Thread):
    """Events at `rate` per second with event time = send time, and a probe video polled in Redis."""

    def __init__(self, cfg, rate: int, seconds: int, interval_s: float, videos: list, pids: dict):
        super().__init__(daemon=True)
        self.cfg, self.rate, self.seconds, self.interval_s, self.videos = cfg, rate, seconds, interval_s, videos
        self.pids = pids  # process trees whose CPU use during the traffic is reported, by name
        self.cpu: dict = {}
        self.sent_probe: list = []  # event time of probe view k (1-based count k)
        self.seen: dict = {}  # k -> wall ms when Redis first showed views >= k

    def run(self):
        poller = threading.Thread(target=self._poll, daemon=True)
        poller.start()
        p = Producer(client_config(self.cfg.kafka, {"linger.ms": 5}))
        topic = self.cfg.kafka.topics.engagement
        end = time.time() + self.seconds
        i = 0
        next_probe = time.time()
        cpu_from = cpu_used(self.pids)
        while time.time() < end:
            t = time.time()
            now_ms = int(t * 1000)
            if t >= next_probe:  # first in its tick: the probe does not wait for the tick's other events
                self.sent_probe.append(now_ms)
                p.produce(topic, event(PROBE, now_ms, -len(self.sent_probe)), key=PROBE.encode())
                next_probe += 0.1
            for _ in range(max(1, int(self.rate * self.interval_s))):
                v = self.videos[i % len(self.videos)]
                p.produce(topic, event(v, now_ms, i), key=v.encode())
                i += 1
            p.poll(0)
            time.sleep(max(0.0, self.interval_s - (time.time() - t)))
        p.flush(30)
        self.cpu = cores_between(cpu_from, cpu_used(self.pids))
        self.sent = i
        time.sleep(5)
        self.done = True

    def _poll(self):
        client = redis.Redis.from_url(self.cfg.redis.url)
        reader = FeatureReader(client, groups_for(self.cfg))
        self.done = False
        while not self.done:
            (row,) = reader.get("video", [PROBE], ["views_1h"])
            now = time.time() * 1000
            if row.found:
                n = row.values["views_1h"]
                for k in range(1, n + 1):
                    self.seen.setdefault(k, now)
            time.sleep(0.002)

    def report(self, checkpoints: CheckpointWatch, updates: list[tuple[int, int]]) -> dict:
        by_probe = [(self.seen[k] - self.sent_probe[k - 1], self.sent_probe[k - 1])
                    for k in range(1, len(self.sent_probe) + 1) if k in self.seen]
        lags = sorted(lag for lag, _ in by_probe)
        parts = self.split(updates)
        # where in the minute the slowest probe views were sent (per-minute work, the spike
        # family's interval, lands on the steps just after a minute's end), and how soon after
        # them a checkpoint started (their step closes 1-1.5 s after they are sent)
        def next_checkpoint(sent):
            started = checkpoints.next_start_after(sent)
            return None if started is None else round(started - sent)
        slowest = [{"ms": round(lag), "sent_at": utc(sent), "second_of_minute": round(sent % 60_000 / 1000, 1),
                    "ms_to_next_checkpoint": next_checkpoint(sent),
                    "ms_job": parts.get(sent, (None, None))[0], "ms_writer": parts.get(sent, (None, None))[1]}
                   for lag, sent in sorted(by_probe, reverse=True)[:5]]
        q = lambda p: round(lags[min(len(lags) - 1, int(p * len(lags)))]) if lags else None

        def quantiles(xs):
            xs = sorted(xs)
            return {"p50": xs[len(xs) // 2], "p99": xs[min(len(xs) - 1, int(0.99 * len(xs)))]} if xs else None
        return {"input_rate_events_per_second": self.rate, "seconds": self.seconds, "events_sent": self.sent,
                "sent_from": utc(self.sent_probe[0]) if self.sent_probe else None,
                "sent_to": utc(self.sent_probe[-1]) if self.sent_probe else None,
                "probe_views": len(self.sent_probe), "probe_views_seen": len(lags),
                "freshness_ms_p50": q(0.5), "freshness_ms_p99": q(0.99), "freshness_ms_max": round(lags[-1]) if lags else None,
                "freshness_ms_mean": round(statistics.mean(lags)) if lags else None,
                "job_ms": quantiles([j for j, _ in parts.values()]),
                "writer_ms": quantiles([w for _, w in parts.values()]),
                "slowest_probe_views": slowest}

    def split(self, updates: list[tuple[int, int]]) -> dict:
        """Per probe view seen (by its send time): (the job's part: from its step's end plus the
        watermark delay to the first update record counting it; the writer's: from that record
        to Redis), in ms."""
        e = self.cfg.engagement
        parts, i = {}, 0
        for k in range(1, len(self.sent_probe) + 1):
            while i < len(updates) and updates[i][0] < k:
                i += 1
            if i == len(updates) or k not in self.seen:
                continue
            sent, produced = self.sent_probe[k - 1], updates[i][1]
            closable = (sent // e.emit_interval + 1) * e.emit_interval + e.max_out_of_orderness
            parts[sent] = (round(produced - closable), round(self.seen[k] - produced))
        return parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--job", default="engagement", choices=("engagement", "features"),
                    help="the engagement job alone, or the combined job (every family) around it")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--videos", type=int, default=100_000)
    ap.add_argument("--event-rate", type=int, default=150_000, help="events per second of event time in the backlog")
    ap.add_argument("--live-rate", type=int, default=20_000)
    ap.add_argument("--send-interval-ms", type=float, default=SEND_INTERVAL_MS,
                    help="the live sender sends a tick's events every this many ms")
    ap.add_argument("--live-seconds", type=int, default=30)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--bundle-time", help="override flink.bundle_time, e.g. 1000ms")
    ap.add_argument("--bundle-size", type=int, help="override flink.bundle_size")
    ap.add_argument("--buffer-timeout", help="override flink.buffer_timeout, e.g. 10ms")
    ap.add_argument("--watermark-interval", help="override flink.watermark_interval, e.g. 50ms")
    ap.add_argument("--out", default=str(RESULTS / "engagement.json"))
    args = ap.parse_args()
    result = run(args)
    result["command"] = " ".join(["python -m bench.engagement"] + sys.argv[1:])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
