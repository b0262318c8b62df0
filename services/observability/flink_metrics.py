"""The Flink job's metrics, read from its REST API at scrape time (the embedded mini-cluster
serves it as well as a standalone cluster), under stable names:

    fyp_job_records_in_total{job,source}   records read from a source topic (valid or not)
    fyp_job_dead_letters_total{job}        records sent to the dead-letter topic
    fyp_job_late_events_total{job}         events sent to the late topic
    fyp_job_feature_updates_total{job}     feature updates sent to the writer's topic
    fyp_job_feature_update_records_total{job}  the records that carried them (batches of updates)
    fyp_job_operator_counter_total{job,name}  the jobs' own counters (users_created, transitions, ...)
    fyp_job_restarts_total{job}            job restarts (each a recovery from a checkpoint)
    fyp_job_last_checkpoint_age_seconds{job}  since the newest completed checkpoint
    fyp_job_up{job}                        1 while the job is RUNNING

Flink names operator metrics "<operator>[<id>].<metric>" with ids that change with the job graph;
the patterns below match them by name only.
"""
from __future__ import annotations

import json
import re
import time
import urllib.request

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

SOURCE = re.compile(r"^Source__(\w+?)_raw\[\d+\]\.numRecordsOut$")
SINKS = {"dead_letter_sink": "fyp_job_dead_letters_total", "late_sink": "fyp_job_late_events_total",
         "feature_update_sink": "fyp_job_feature_update_records_total"}
SINK = re.compile(r"^(\w+?)\[\d+\]__Writer\.numRecordsIn$")
OWN_COUNTERS = ("users_created", "users_evicted",  # jobs/jvm DecayedInterests
                "intervals", "video_minutes", "transitions",  # the spike book (jobs/spikes_fn.py)
                "feature_updates")  # jobs/jvm UpdateBatches and the spike book
# the jobs' own counters that are families of their own (the others: fyp_job_operator_counter_total)
OWN_FAMILIES = {"feature_updates": "fyp_job_feature_updates_total"}
OWN = re.compile(r"^[^.]+\.(" + "|".join(OWN_COUNTERS) + r")$")


def _get(url: str, timeout: float):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class FlinkJobCollector:
    def __init__(self, rest_url: str, job: str, job_name: str, timeout: float = 2.0):
        self.rest = rest_url.rstrip("/")
        self.job = job
        self.job_name = job_name
        self.timeout = timeout

    def _job(self):
        jobs = _get(f"{self.rest}/jobs/overview", self.timeout).get("jobs", [])
        mine = [j for j in jobs if j["name"] == self.job_name]
        running = [j for j in mine if j["state"] == "RUNNING"]
        return (running or sorted(mine, key=lambda j: j.get("start-time", 0)))[-1] if mine else None

    def read(self) -> dict:
        """{metric family: {label tuple: value}}; empty when the REST API does not answer."""
        out: dict = {}
        try:
            job = self._job()
        except OSError:
            return out
        if job is None:
            return out
        jid = job["jid"]
        out["fyp_job_up"] = {(): 1.0 if job["state"] == "RUNNING" else 0.0}
        for v in _get(f"{self.rest}/jobs/{jid}", self.timeout)["vertices"]:
            base = f"{self.rest}/jobs/{jid}/vertices/{v['id']}/subtasks/metrics"
            ids = [m["id"] for m in _get(base, self.timeout)]
            wanted = [i for i in ids if SOURCE.match(i) or SINK.match(i) or OWN.match(i)]
            if not wanted:
                continue
            for m in _get(f"{base}?get={','.join(wanted)}&agg=sum", self.timeout):
                value, mid = float(m["sum"]), m["id"]
                if s := SOURCE.match(mid):
                    out.setdefault("fyp_job_records_in_total", {})[(s.group(1),)] = value
                elif (k := SINK.match(mid)) and k.group(1) in SINKS:
                    fam = out.setdefault(SINKS[k.group(1)], {})
                    fam[()] = fam.get((), 0.0) + value
                elif (o := OWN.match(mid)) and o.group(1) in OWN_FAMILIES:
                    fam = out.setdefault(OWN_FAMILIES[o.group(1)], {})
                    fam[()] = fam.get((), 0.0) + value
                elif o:
                    fam = out.setdefault("fyp_job_operator_counter_total", {})
                    fam[(o.group(1),)] = fam.get((o.group(1),), 0.0) + value
        restarts = _get(f"{self.rest}/jobs/{jid}/metrics?get=numRestarts", self.timeout)
        if restarts:
            out["fyp_job_restarts_total"] = {(): float(restarts[0]["value"])}
        cp = _get(f"{self.rest}/jobs/{jid}/checkpoints", self.timeout).get("latest", {}).get("completed")
        if cp and cp.get("latest_ack_timestamp"):
            out["fyp_job_last_checkpoint_age_seconds"] = {(): max(0.0, time.time() - cp["latest_ack_timestamp"] / 1000)}
        return out

    def collect(self):
        try:
            got = self.read()
        except (OSError, ValueError, KeyError):
            got = {}
        labels = {"fyp_job_records_in_total": ["job", "source"], "fyp_job_operator_counter_total": ["job", "name"]}
        for name, series in got.items():
            is_counter = name.endswith("_total")
            family = (CounterMetricFamily if is_counter else GaugeMetricFamily)(
                name[:-6] if is_counter else name, name.replace("_", " "), labels=labels.get(name, ["job"]))
            for extra, value in series.items():
                family.add_metric([self.job, *extra], value)
            yield family
