"""The on-call dashboard (docs/grafana/fyp-oncall.json) queries only metrics the pipeline exports,
and is ready for Grafana's file provisioning (docs/grafana/provisioning/).

The exported names are not listed here: they come from the exporters production runs, rendered as
Prometheus scrapes them. The services beside a job are built by fyp.runner.make_services (the
combined job: writer, notifier, alerter) with Kafka's clients and Redis stood in for (nothing is
read at construction but topic metadata and stored positions); the Flink collector parses a fake
REST payload shaped like Flink's; the read path's /metrics is `fyp serve`'s own route."""
from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "docs" / "grafana"
DASHBOARD = GRAFANA / "fyp-oncall.json"

# PromQL's functions and aggregation operators (Prometheus 2.x/3.x), keywords and literals
PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
    "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "exp", "floor",
    "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
    "histogram_stdvar", "histogram_sum", "holt_winters", "double_exponential_smoothing", "hour", "idelta",
    "increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh",
    "sort", "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                   "unless", "offset", "atop", "inf", "nan"}
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
NAME_MATCHER = re.compile(r'__name__\s*(=~|=)\s*"([^"]*)"')
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: bare identifiers that are not functions,
    keywords, label names (inside {...} or by/on/... lists) or durations, plus __name__ matchers
    (an alternation of literal names). A name followed by "(" must be a known function."""
    names = set()
    for op, value in NAME_MATCHER.findall(expr):
        alternatives = value.split("|") if op == "=~" else [value]
        assert all(METRIC_NAME.match(a) for a in alternatives), f"__name__ matcher not literal names: {value!r}"
        names.update(alternatives)
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values)
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    e = LABEL_LISTS.sub(" ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)  # Grafana variables ($__rate_interval, $job)
    for name, call in IDENT.findall(e):
        if call:
            assert name in PROMQL_FUNCTIONS, f"{name!r} called as a function in {expr!r}: not a PromQL function"
        elif name.lower() not in PROMQL_KEYWORDS:
            names.add(name)
    return names


def test_the_promql_name_extraction():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{job=~"$job", le!="x"}[$__rate_interval])))'
    ) == {"a_bucket"}
    assert promql_metric_names("sum(rate(a_total[10m] offset 1h)) / on (job) group_left b > bool 1e3") == {
        "a_total", "b"}
    assert promql_metric_names('{__name__=~"x_up|y_total", job="a"}') == {"x_up", "y_total"}
    with pytest.raises(AssertionError):
        promql_metric_names("not_a_function(x)")


# -- what the pipeline exports ------------------------------------------------------------------

class OfflineRedis:
    """Redis at the services' construction: scripts registered, no positions stored yet."""

    def register_script(self, script):
        return lambda *args, **kwargs: None

    def hgetall(self, key):
        return {}


class FakeConsumer:
    """confluent_kafka.Consumer as PartitionReader uses it at construction: topic metadata, the
    partitions' first offsets, assign."""

    def __init__(self, conf):
        self.conf = conf

    def list_topics(self, topic, timeout=None):
        class Meta:
            topics = {topic: type("T", (), {"partitions": {0: None, 1: None}})()}
        return Meta()

    def assign(self, partitions):
        self.assigned = partitions

    def get_watermark_offsets(self, partition, timeout=None, cached=False):
        return 0, 0

    def close(self):
        pass


class FakeProducer:
    def __init__(self, conf):
        self.conf = conf


def exposition_names(text: str) -> dict[str, str]:
    """{sample name: its family's type} as Prometheus reads them from an exposition text."""
    types, names = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            types[family] = kind
        elif line and not line.startswith("#"):
            names[re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)] = None
    for name in names:
        family = next((f for f in sorted(types, key=len, reverse=True)
                       if name == f or (name.startswith(f + "_") and name[len(f) + 1:] in
                                        ("total", "created", "bucket", "sum", "count"))), None)
        names[name] = types.get(family, "untyped")
    return names


def flink_rest_payloads(job_name: str, jid: str = "a1b2"):
    """Answers of Flink's REST API as FlinkJobCollector reads them (operator metric ids as Flink
    names them: "<operator>[<id>].<metric>", sinks' writers "<sink>[<id>]__Writer.<metric>")."""
    vertex_metrics = {
        "v-src": ["Source__engagement_raw[1].numRecordsOut", "Source__uploads_raw[2].numRecordsOut",
                  "Source__engagement_raw[1].numRecordsIn"],
        "v-ops": ["spike_detection.transitions", "spike_detection.intervals", "spike_detection.video_minutes",
                  "decayed_interests_per_user.users_created", "decayed_interests_per_user.users_evicted",
                  "feature-update-batches.feature_updates"],
        "v-sinks": ["dead_letter_sink[5]__Writer.numRecordsIn", "late_sink[6]__Writer.numRecordsIn",
                    "feature_update_sink[7]__Writer.numRecordsIn", "other_sink[8]__Writer.numRecordsIn"],
    }
    now_ms = int(time.time() * 1000)

    def get(url: str, timeout: float):
        path = url.split("://", 1)[1].split("/", 1)[1]
        if path == "jobs/overview":
            return {"jobs": [{"jid": jid, "name": job_name, "state": "RUNNING", "start-time": now_ms - 60_000}]}
        if path == f"jobs/{jid}":
            return {"vertices": [{"id": v} for v in vertex_metrics]}
        if path == f"jobs/{jid}/metrics?get=numRestarts":
            return [{"id": "numRestarts", "value": "1"}]
        if path == f"jobs/{jid}/checkpoints":
            return {"latest": {"completed": {"id": 3, "latest_ack_timestamp": now_ms - 5_000}}}
        m = re.fullmatch(rf"jobs/{jid}/vertices/([\w-]+)/subtasks/metrics(?:\?get=([^&]*)&agg=sum)?", path)
        assert m, f"unexpected REST call {url}"
        if m.group(2) is None:
            return [{"id": i} for i in vertex_metrics[m.group(1)]]
        return [{"id": i, "min": 1.0, "max": 6.0, "avg": 3.5, "sum": 7.0} for i in m.group(2).split(",")]
    return get


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, str]:
    """Every sample name the pipeline's /metrics endpoints expose, with its family's type."""
    from settings import connections
    from services import notifier
    from fyp import runner
    from services.alerts import alerter
    from settings.config import load_config
    from services.observability import flink_metrics
    from services.observability.flink_metrics import FlinkJobCollector
    from services.observability.service_metrics import ServiceCollector
    from services.serve import create_app
    from jobs import features
    from operators.feature_groups import groups_for
    from services import partition_reader
    from services.feature_writer import FeatureUpdateConsumer

    mp = pytest.MonkeyPatch()
    try:
        state = str(tmp_path_factory.mktemp("state"))
        cfg = load_config(overrides={"offline.enabled": False, "stack.state_dir": state}, env={})
        mp.setattr(runner, "redis_client", lambda *a, **k: OfflineRedis())
        mp.setattr(connections, "redis_client", lambda *a, **k: OfflineRedis())
        mp.setattr(partition_reader, "topic_id", lambda kafka, topic, timeout_s=30: "topic-id")
        mp.setattr(partition_reader, "Consumer", FakeConsumer)
        mp.setattr(notifier, "Producer", FakeProducer)
        mp.setattr(alerter, "Producer", FakeProducer)
        mp.setattr(flink_metrics, "_get", flink_rest_payloads(features.JOB_NAME))

        services = runner.make_services(cfg, "features")  # writer, notifier, alerter: every kind
        assert {type(s).__name__ for s in services} == {"FeatureUpdateConsumer", "MilestoneNotifier", "SpikeAlerter"}
        writer = next(s for s in services if isinstance(s, FeatureUpdateConsumer))
        # what the writer's step() records: a write's latency, the newest as-of per group, positions
        writer.write_latency.observe(0.003)
        now_ms = int(time.time() * 1000)
        for group in groups_for(cfg):
            writer.newest_as_of[group] = now_ms - 2_000
        writer.positions.update({0: 10, 1: 4})
        writer.high_watermarks.update({0: 12, 1: 4})

        # as fyp.runner.start_metrics / services.observability.exporter.start_exporter serve them
        registry = CollectorRegistry()
        registry.register(ServiceCollector(services, "features"))
        flink = FlinkJobCollector("http://flink-rest.invalid:8081", "features", features.JOB_NAME)
        registry.register(flink)
        text = generate_latest(registry).decode()
        assert set(flink.read()) == {"fyp_job_up", "fyp_job_records_in_total", "fyp_job_dead_letters_total",
                                     "fyp_job_late_events_total", "fyp_job_feature_updates_total",
                                     "fyp_job_feature_update_records_total", "fyp_job_operator_counter_total", "fyp_job_restarts_total",
                                     "fyp_job_last_checkpoint_age_seconds"}, "the fake REST payload misses a path"

        # fyp serve's GET /metrics, its own route
        from featurestore.client import FeatureClient

        client = FeatureClient(OfflineRedis(), groups_for(cfg), cfg.serving)
        app = create_app(client)
        route = next(r for r in app.routes if getattr(r, "path", None) == "/metrics")
        text += asyncio.run(route.endpoint(None)).body.decode()
    finally:
        mp.undo()
    return exposition_names(text)


def test_the_exporters_expose_what_docs_and_alerts_name(exported):
    """A check of the fixture itself: the families the alert rules use are among those found."""
    for name in ("fyp_job_up", "fyp_job_records_in_total", "fyp_writer_redis_write_seconds_bucket",
                 "fyp_feature_freshness_seconds", "fyp_writer_consumer_lag_messages", "fyp_alerter_alerts_total",
                 "fyp_notifier_notified_total", "fyp_read_breaker_open", "fyp_serve_request_seconds_bucket"):
        assert name in exported, name
    rules = yaml.safe_load((ROOT / "docs" / "prometheus-alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert promql_metric_names(rule["expr"]) <= set(exported), rule["alert"]


# -- the dashboard ----------------------------------------------------------------------------

def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def queries(dash: dict):
    """(where, PromQL) of every panel target and every query variable."""
    for p in all_panels(dash["panels"]):
        for t in p.get("targets", []):
            yield f"panel {p['title']!r} target {t.get('refId')}", t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q)  # (selector, label name)
            yield f"variable {v['name']!r}", m.group(1) if m else q


def test_every_metric_a_panel_queries_is_exported(exported):
    dash = dashboard()
    missing, used = [], set()
    for where, expr in queries(dash):
        names = promql_metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        used |= names
        missing += [f"{where}: {n}" for n in sorted(names - set(exported))]
    assert not missing, "queried but not exported:\n" + "\n".join(missing)
    # the list: throughput, lag, freshness, dead letters, late events, Redis write latency, spike alerts
    for name in ("fyp_job_records_in_total", "fyp_writer_consumer_lag_messages", "fyp_feature_freshness_seconds",
                 "fyp_job_dead_letters_total", "fyp_job_late_events_total", "fyp_writer_redis_write_seconds_bucket",
                 "fyp_alerter_alerts_total", "fyp_job_up", "fyp_job_restarts_total",
                 "fyp_job_last_checkpoint_age_seconds", "fyp_writer_written_total", "fyp_serve_request_seconds_bucket",
                 "fyp_read_breaker_open"):
        assert name in used, f"no panel shows {name}"


def test_rates_are_taken_of_counters_and_histograms_only(exported):
    """rate()/increase() of a gauge is a silent mistake: every series they take must be a counter's
    or a histogram's."""
    for where, expr in queries(dashboard()):
        for fn, name in re.findall(r"\b(rate|irate|increase|resets)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", expr):
            assert exported.get(name) in ("counter", "histogram"), f"{where}: {fn}({name}) of a {exported.get(name)}"


def test_the_dashboard_is_provisioning_ready():
    dash = dashboard()
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources.yaml").read_text())
    assert ds["apiVersion"] == 1
    (prom,) = [d for d in ds["datasources"] if d["type"] == "prometheus"]
    uid = prom["uid"]
    assert prom["url"] and prom["access"] == "proxy"

    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]

    assert dash["uid"] and len(dash["uid"]) <= 40 and re.fullmatch(r"[\w-]+", dash["uid"])
    assert dash["title"] and isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert dash.get("id") is None, "a provisioned dashboard carries no database id"
    assert "__inputs" not in dash, "an export for import (with ${DS_...} inputs) is not provisionable as is"
    assert dash["panels"]
    ids = [p["id"] for p in all_panels(dash["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in all_panels(dash["panels"]):
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t.get("datasource", p["datasource"]) == p["datasource"], p["title"]
            assert t["expr"].strip() and t["refId"], p["title"]
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            assert v["datasource"] == {"type": "prometheus", "uid": uid}, v["name"]
    assert "${DS_" not in DASHBOARD.read_text()
