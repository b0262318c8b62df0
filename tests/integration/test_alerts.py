"""The spike alerter on real tansu and Redis (no Flink: the tests write the spike job's transitions
themselves), with local webhook receivers (http.server in a thread):

- one alert per video per cooldown, across a restart, re-emissions and a full replay;
- the crash window between claim and publish reconciled against the spike-alerts topic;
- a webhook that fails for a while gets each alert exactly once afterwards, while the alerter keeps
  consuming and publishing (and a healthy webhook is not held up);
- a delivery still pending when the alerter stops is made by the next instance;
- `fyp alerts tail`.
"""
from __future__ import annotations

import argparse
import http.server
import threading
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from featurestore import layout
from fyp import alerts_cli
from services.alerts.alerter import SpikeAlerter, make_alerter
from services.alerts.tail import follow_alerts
from settings.kafka_clients import client_config
from stack.daemons import free_port
from services.partition_reader import read_to_end

pytestmark = pytest.mark.integration

T0 = 1_794_000_000_000
MIN = 60_000
HOUR = 60 * MIN
PLATFORM_VIEWS = 100_000  # per minute: 1,000 views of one video are 1 % of them (alerts.critical_share)


def transition(video: str, started: int, at: int, state: str = "super_spike", previous: str = "rising",
               views: int = 500, regions: int = 2) -> dict:
    n = 30
    series = [10] * (n - 5) + [40, 120, 300, 450, views]
    return {"video_id": video, "state": state, "previous_state": previous, "at": at, "spike_started_at": started,
            "score": 12.5, "views": views, "baseline_rate": 10.0, "growth": views / 10.0, "regions": regions,
            "platform_views": PLATFORM_VIEWS, "share": views / PLATFORM_VIEWS,
            "interval_ms": MIN, "series_start": at - n * MIN, "series": series}


def ensure_alert_topics(cfg) -> None:
    """The stack fixture creates the project's topics; these two may not be among them yet."""
    admin = AdminClient({"bootstrap.servers": cfg.kafka.bootstrap})
    t = cfg.kafka.topics
    wanted = [t.spike_transitions, t.spike_alerts]
    deadline = time.monotonic() + 20
    while missing := [x for x in wanted if x not in admin.list_topics(timeout=5).topics]:
        for fut in admin.create_topics([NewTopic(x, num_partitions=cfg.kafka.partitions, replication_factor=1)
                                        for x in missing]).values():
            try:
                fut.result()
            except Exception:
                pass
        assert time.monotonic() < deadline, f"topics not created: {missing}"
        time.sleep(0.2)


def produce_transitions(cfg, transitions: list[dict]) -> None:
    p = Producer({"bootstrap.servers": cfg.kafka.bootstrap})
    for t in transitions:
        p.produce(cfg.kafka.topics.spike_transitions, orjson.dumps(t), key=t["video_id"].encode())
    assert p.flush(30) == 0


def alerts_on_topic(cfg, idle_s: float = 2.0) -> list[dict]:
    c = Consumer({"bootstrap.servers": cfg.kafka.bootstrap, "group.id": "test-reader", "enable.auto.commit": False})
    c.assign([TopicPartition(cfg.kafka.topics.spike_alerts, p, 0) for p in range(cfg.kafka.partitions)])
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle_s:
        for m in c.consume(100, 0.2):
            if not m.error():
                out.append(orjson.loads(m.value()))
                assert m.key().decode() == out[-1]["id"]
                last = time.monotonic()
    c.close()
    return out


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 500 while `failing` is set or until `fail_until`
    (monotonic), then 200, and records every request as (status answered, headers, JSON body)."""

    def __init__(self, port: int = 0, fail_until: float = 0.0, failing: bool = False):
        self.fail_until, self.failing, self.requests, self.lock = fail_until, failing, [], threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if receiver.failing or time.monotonic() < receiver.fail_until else 200
                with receiver.lock:
                    receiver.requests.append((status, dict(self.headers), orjson.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list:
        with self.lock:
            return [body for status, _h, body in self.requests if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def accepted_ids(receiver: Receiver, fmt: str = "plain") -> list[str]:
    if fmt == "alertmanager":
        return sorted(a["labels"]["spike_id"] for body in receiver.accepted() for a in body)
    return sorted(body["id"] for body in receiver.accepted())


def alert_config(stack, name: str, hooks: list[dict], **overrides):
    cfg, path = stack.config(name, **{"alerts.webhooks": hooks, "alerts.retry_initial": "200ms",
                                      "alerts.retry_max": "1s", **overrides})
    ensure_alert_topics(cfg)
    return cfg, path


def test_one_alert_per_video_per_cooldown_across_restarts_and_replays(stack):
    receiver = Receiver()
    cfg, _ = alert_config(stack, "alerts-dedup", [{"name": "oncall", "url": receiver.url, "format": "plain"}])
    client = stack.redis(cfg)
    first = transition("v1", started=T0, at=T0 + 5 * MIN)
    produce_transitions(cfg, [transition("v1", T0, T0, state="rising", previous="normal"), first])
    a = make_alerter(cfg, client)
    try:
        read_to_end(a)
        assert a.wait_for_deliveries(10)
    finally:
        a.close()
    assert a.stats["alerts"] == 1 and a.stats["ignored"] == 1 and a.stats["delivered"] == 1

    # the job restarts and emits the same transition again, and the video spikes anew within the cooldown
    second_within = transition("v1", started=T0 + HOUR, at=T0 + HOUR + 3 * MIN)
    produce_transitions(cfg, [first, second_within])
    b = make_alerter(cfg, client)
    try:
        read_to_end(b)
        assert b.pending_deliveries() == 0  # outbox entries are queued within the batch that raised them
    finally:
        b.close()
    assert b.stats["alerts"] == 0 and b.stats["duplicates"] == 1 and b.stats["suppressed"] == 1
    assert [x["id"] for x in alerts_on_topic(cfg)] == [f"v1:{T0}"]
    assert accepted_ids(receiver) == [f"v1:{T0}"]

    # a spike after the cooldown (6 h of event time after the first alert) alerts again
    after = transition("v1", started=T0 + 7 * HOUR, at=T0 + 7 * HOUR + 2 * MIN, views=2000, regions=1)
    produce_transitions(cfg, [after])
    c = make_alerter(cfg, client)
    try:
        read_to_end(c)
        assert c.wait_for_deliveries(10)
    finally:
        c.close()
    alerts = alerts_on_topic(cfg)
    assert sorted(x["id"] for x in alerts) == [f"v1:{T0}", f"v1:{T0 + 7 * HOUR}"]
    assert accepted_ids(receiver) == [f"v1:{T0}", f"v1:{T0 + 7 * HOUR}"]
    newest = next(x for x in alerts if x["id"] == f"v1:{T0 + 7 * HOUR}")
    assert newest["severity"] == "critical" and newest["runbook_url"] == cfg.alerts.runbook_url
    assert Path(newest["plot_path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(newest["plot_path"]).parent == cfg.state_dir / "alerts"
    assert client.pttl(layout.spike_alert_key("v1")) > 6 * 86_400_000  # featurestore.ttl.spike_alerts: 7d

    # a full replay of the topic (an alerter with no stored positions) alerts nothing again
    replay = SpikeAlerter(client_config(cfg.kafka), cfg.kafka.topics.spike_transitions, cfg.kafka.topics.spike_alerts,
                          client, "replaying-alerter", cfg.alerts, cfg.ttl_ms("spike_alerts"),
                          cfg.state_dir / "alerts")
    try:
        read_to_end(replay)
    finally:
        replay.close()
    assert replay.stats["transitions"] == 5 and replay.stats["alerts"] == 0
    assert len(alerts_on_topic(cfg)) == 2 and len(accepted_ids(receiver)) == 2
    receiver.close()


def test_claims_left_by_a_crash_are_reconciled_against_the_topic(stack):
    receiver = Receiver()
    cfg, _ = alert_config(stack, "alerts-crash", [{"name": "oncall", "url": receiver.url, "format": "plain"}])
    client = stack.redis(cfg)
    published, lost = transition("va", T0, T0 + MIN), transition("vb", T0, T0 + MIN)
    probe = make_alerter(cfg, client, deliver=False)  # only to build the alerts as the alerter would
    probe.close()
    for t in (published, lost):  # both claimed, neither marked published: the alerter died
        assert probe.ledger.claim(probe.alert_for(t)) == "claimed"
    p = Producer({"bootstrap.servers": cfg.kafka.bootstrap})  # ... after publishing only the first
    p.produce(cfg.kafka.topics.spike_alerts, orjson.dumps(probe.alert_for(published)), key=f"va:{T0}".encode())
    p.flush(30)
    produce_transitions(cfg, [published, lost])  # re-read after the restart

    a = make_alerter(cfg, client)
    try:
        read_to_end(a)
        assert a.wait_for_deliveries(10)
    finally:
        a.close()
    assert sorted(x["id"] for x in alerts_on_topic(cfg)) == [f"va:{T0}", f"vb:{T0}"]
    assert a.stats["reconciled"] == 1 and a.stats["alerts"] == 1
    assert accepted_ids(receiver) == [f"va:{T0}", f"vb:{T0}"]  # queued once each, never twice
    for vid in ("va", "vb"):
        assert client.hget(layout.spike_alert_key(vid), "published") == b"1"
    receiver.close()


def test_a_failing_webhook_gets_each_alert_once_later_and_never_stalls_the_alerter(stack):
    flaky = Receiver(failing=True)  # fails for 5 s from the alerter's start, and until the test has looked
    healthy = Receiver()
    cfg, _ = alert_config(stack, "alerts-flaky", [
        {"name": "flaky", "url": flaky.url, "format": "plain", "headers": {"Authorization": "$ALERT_TEST_TOKEN"}},
        {"name": "am", "url": healthy.url, "format": "alertmanager", "timeout": "2s"}])
    a = make_alerter(cfg, stack.redis(cfg), environ={"ALERT_TEST_TOKEN": "Bearer t0ken"})
    flaky.fail_until = time.monotonic() + 5.0
    stop = threading.Event()
    runner = threading.Thread(target=a.run, args=(stop,), daemon=True)
    runner.start()
    try:
        ids = []
        for i, vid in enumerate(("w1", "w2", "w3")):
            produce_transitions(cfg, [transition(vid, T0 + i * MIN, T0 + (i + 3) * MIN)])
            ids.append(f"{vid}:{T0 + i * MIN}")
            time.sleep(0.5)
        # during the outage: every alert is on the topic and at the healthy webhook
        deadline = time.monotonic() + 10
        while sorted(x["id"] for x in alerts_on_topic(cfg, idle_s=0.5)) != ids:
            assert time.monotonic() < deadline, "alerts not published while a webhook fails"
        deadline = time.monotonic() + 5
        while accepted_ids(healthy, "alertmanager") != ids:
            assert time.monotonic() < deadline, "the healthy webhook was held up by the failing one"
            time.sleep(0.1)
        assert not flaky.accepted() and len(flaky.requests) >= 3  # it was tried and refused
        flaky.failing = False  # the outage ends (at the earliest 5 s after the start)

        # after the outage: each alert exactly once
        deadline = time.monotonic() + 15
        while accepted_ids(flaky) != ids:
            assert time.monotonic() < deadline, f"flaky webhook got {accepted_ids(flaky)}"
            time.sleep(0.1)
        assert a.wait_for_deliveries(15)  # every outbox empty: nothing is left to deliver
    finally:
        stop.set()
        runner.join(10)
        a.close()
    # the delivery threads have stopped: what the receivers hold is final (no duplicate delivery)
    assert accepted_ids(flaky) == ids and accepted_ids(healthy, "alertmanager") == ids
    s = a.stats
    assert s["alerts"] == 3 and s["delivered"] == 6 and s["delivery_retries"] >= 3 and s["dropped"] == 0
    assert all(h["Authorization"] == "Bearer t0ken" for _s, h, _b in flaky.requests)
    assert all(b["plot_png_base64"] for b in flaky.accepted())
    flaky.close()
    healthy.close()


def test_a_pending_delivery_is_made_by_the_next_alerter(stack):
    port = free_port()  # nothing listens there yet: connection refused
    cfg, _ = alert_config(stack, "alerts-pending",
                          [{"name": "oncall", "url": f"http://127.0.0.1:{port}/hook", "format": "slack"}])
    client = stack.redis(cfg)
    produce_transitions(cfg, [transition("p1", T0, T0 + 4 * MIN)])
    a = make_alerter(cfg, client)
    try:
        read_to_end(a)
        deadline = time.monotonic() + 10
        while a.stats["delivery_retries"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        a.close()
    assert a.pending_deliveries() == 1 and a.stats["delivered"] == 0

    receiver = Receiver(port=port)
    b = make_alerter(cfg, client)
    try:
        assert b.wait_for_deliveries(10)
    finally:
        b.close()
    assert len(receiver.accepted()) == 1 and f"p1:{T0}" in orjson.dumps(receiver.accepted()[0]).decode()
    assert b.stats["delivered"] == 1 and b.stats["alerts"] == 0
    assert [x["id"] for x in alerts_on_topic(cfg)] == [f"p1:{T0}"]  # delivered, not published again
    receiver.close()


def test_alerts_tail(stack, capsys):
    cfg, path = alert_config(stack, "alerts-tail", [])
    produce_transitions(cfg, [transition("t1", T0, T0 + MIN, views=1500), transition("t2", T0, T0 + MIN)])
    a = make_alerter(cfg, stack.redis(cfg))
    try:
        read_to_end(a)
    finally:
        a.close()

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    alerts_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--config", str(path), "alerts", "tail", "--from-beginning", "--count", "2"])
    args.fn(args)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(cfg.alerts.runbook_url in line for line in lines)
    t1 = next(line for line in lines if "video t1" in line)
    assert "CRITICAL" in t1 and "1,500 views/1m" in t1 and "growth 150.0x" in t1 and "2 regions" in t1

    # following: what is already there is not shown, what comes next is
    stop, seen, following = threading.Event(), [], threading.Event()

    def follow():
        for raw in follow_alerts(client_config(cfg.kafka), cfg.kafka.topics.spike_alerts, False, stop,
                                 caught_up_event=following):
            seen.append(orjson.loads(raw)["id"])
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert following.wait(30), "the follower never caught up with the topic"
    produce_transitions(cfg, [transition("t3", T0, T0 + MIN)])
    a = make_alerter(cfg, stack.redis(cfg))
    try:
        read_to_end(a)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        a.close()
    follower.join(5)
    assert seen == [f"t3:{T0}"]


def test_silence_a_video(stack, capsys):
    cfg, path = alert_config(stack, "alerts-silence", [])
    client = stack.redis(cfg)
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    alerts_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--config", str(path), "alerts", "silence", "s1", "--for", "24h"])
    args.fn(args)
    assert "silenced 1 video" in capsys.readouterr().out
    probe = make_alerter(cfg, client, deliver=False)
    probe.close()
    now = int(time.time() * 1000)
    assert probe.ledger.claim(probe.alert_for(transition("s1", now, now + HOUR))) == "cooldown"
    assert probe.ledger.claim(probe.alert_for(transition("s2", now, now + HOUR))) == "claimed"
    args = parser.parse_args(["--config", str(path), "alerts", "silence", "s1", "--for", "0"])
    args.fn(args)
    assert probe.ledger.claim(probe.alert_for(transition("s1", now + 2 * MIN, now + 5 * MIN))) == "claimed"
