"""Metrics of the services that run beside a job (the feature writer, the milestone notifier, the
spike alerter), collected at scrape time from the counters they keep anyway: nothing on their hot
path beyond what they already count."""
from __future__ import annotations

import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

WRITER_COUNTERS = {
    "consumed": "feature updates read from the feature-updates topic",
    "records": "records read from the feature-updates topic (a record holds one update or a batch)",
    "written": "feature updates stored in Redis (newer than what Redis had)",
    "stale": "feature updates Redis already had a newer or equal version of (replays)",
    "undecodable": "feature-update messages that could not be decoded (a producer bug)",
    "redis_retries": "Redis write attempts that failed and were retried",
    "coerced_values": "feature values stored as null: not of their feature's type (a producer bug)",
    "gap_rereads": "fetches that skipped offsets and were read again (services/partition_reader.py)",
    "offsets_skipped": "offsets still missing after the gap patience, let through (records lost upstream)",
}


class ServiceCollector:
    """`services`: the objects make_services() returned (writer first)."""

    def __init__(self, services, job: str):
        self.services = services
        self.job = job

    def collect(self):
        from services.feature_writer import FeatureUpdateConsumer

        for s in self.services:
            if isinstance(s, FeatureUpdateConsumer):
                yield from self._writer(s)
            else:
                yield from self._plain(s)

    def _writer(self, w):
        for key, doc in WRITER_COUNTERS.items():
            c = CounterMetricFamily(f"fyp_writer_{key}", doc, labels=["job"])
            c.add_metric([self.job], w.stats[key])
            yield c
        buckets, total = w.write_latency.snapshot()
        h = HistogramMetricFamily("fyp_writer_redis_write_seconds", "duration of one pipelined Redis write "
                                  "of a batch (successful attempts)", labels=["job"])
        h.add_metric([self.job], buckets, total)
        yield h
        now_ms = time.time() * 1000
        fresh = GaugeMetricFamily("fyp_feature_freshness_seconds", "wall time now minus the newest as-of event "
                                  "time stored, per feature group", labels=["job", "group"])
        for group, as_of in dict(w.newest_as_of).items():
            fresh.add_metric([self.job, group], max(0.0, (now_ms - as_of) / 1000))
        yield fresh
        lag = GaugeMetricFamily("fyp_writer_consumer_lag_messages", "feature updates not yet read, per "
                                "partition (see the tansu caveat in docs/operations.md)", labels=["job", "partition"])
        for p, n in w.lag().items():
            lag.add_metric([self.job, str(p)], n)
        yield lag

    def _plain(self, s):
        """Any other service: its `stats` dict as counters fyp_<service>_<key>_total."""
        name = type(s).__name__.lower().replace("milestone", "").replace("spike", "") or "service"
        stats = s.stats() if callable(getattr(s, "stats", None)) else getattr(s, "stats", {})
        for key, value in dict(stats).items():
            if isinstance(value, (int, float)):
                c = CounterMetricFamily(f"fyp_{name}_{key}", f"{type(s).__name__} {key}", labels=["job"])
                c.add_metric([self.job], value)
                yield c
