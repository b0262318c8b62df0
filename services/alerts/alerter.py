"""The spike alerter service: spike-transitions -> one alert per video per cooldown on spike-alerts,
and a durable webhook delivery per configured webhook.

Like the milestone notifier (services/notifier.py), it reads every partition of the transitions topic
through services/partition_reader.py, from positions kept in Redis (written after the batch is
handled), and retries Redis and broker outages with backoff, so the job's transitions wait
in the topic rather than being lost.

Per transition INTO super_spike (others are skipped):
 1. claim the alert in the video's record (ledger.py): a re-emission, a replay, or another spike of
    the video within alerts.cooldown (event time) is suppressed, across restarts;
 2. render the plot (plot.py) to <state_dir>/alerts/<id>.png;
 3. publish the alert event (alert.py) to spike-alerts, key = alert id;
 4. in one Redis transaction: one outbox entry per webhook (outbox.py) and the record marked
    published. Delivery threads (delivery.py) do the POSTs; the consumer never waits on a webhook.
A claim found unpublished is an alerter that died between 1 and 4: the spike-alerts topic is read
for the id, and the alert is published only if it is not there (the broker does not honour
transactions, so this is done by hand); either way step 4 follows. As 4 is atomic, a webhook
never gets an alert twice from this path.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import redis
from confluent_kafka import Producer

from services.alerts.alert import alert_id, build_alert, enters_super_spike, safe_file_stem
from services.alerts.delivery import WebhookDelivery
from services.alerts.ledger import CLAIMED, COOLDOWN, DUPLICATE, PENDING, AlertLedger
from services.alerts.plot import alert_png
from services.alerts.severity import severity
from services.topic_service import JsonTopicService, KafkaDeliveryError, published_keys
from settings.config import Config
from settings.families import AlertsConfig
from settings.kafka_clients import PRODUCER_DELIVERY, client_config

log = logging.getLogger("fyp.alerts")


class SpikeAlerter(JsonTopicService):
    counted = "transitions"

    def __init__(self, kafka: dict, transitions_topic: str, alerts_topic: str, client: redis.Redis, name: str,
                 alerts: AlertsConfig, ttl_ms: int, plot_dir: str | Path,
                 batch_max: int = 500, poll_timeout_ms: int = 100, backoff_max_ms: int = 5000,
                 environ=None, deliver: bool = True):
        # kafka: connection settings (settings.kafka_clients.client_config), extended per client below
        self.out_topic, self.alerts = alerts_topic, alerts
        self.plot_dir = Path(plot_dir)
        self.ledger = AlertLedger(client, alerts.cooldown, ttl_ms)
        if ttl_ms < alerts.cooldown:
            log.warning("featurestore.ttl.spike_alerts (%d ms) is shorter than alerts.cooldown (%d ms): a video "
                        "may alert again before its cooldown ends", ttl_ms, alerts.cooldown)
        self._stats = {"ignored": 0, "alerts": 0, "duplicates": 0, "suppressed": 0, "reconciled": 0}
        # Resolves secrets now: a missing environment variable fails the start, not the first alert.
        self.webhooks = [WebhookDelivery(w, client, alerts.retry_initial, alerts.retry_max, alerts.give_up_after,
                                         environ=environ) for w in alerts.webhooks]
        names = [w.name for w in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError(f"alerts.webhooks: names must be unique (each has its own outbox), got {names}")
        self.producer = Producer({**kafka, **PRODUCER_DELIVERY, "linger.ms": 5})
        super().__init__(kafka, transitions_topic, name, client, batch_max, poll_timeout_ms, backoff_max_ms)
        if deliver:
            for w in self.webhooks:
                w.start()

    @property
    def stats(self) -> dict:
        """Consumer counts, plus the webhooks' summed delivered / delivery_retries / dropped."""
        s = dict(super().stats)
        for k, out in (("delivered", "delivered"), ("retries", "delivery_retries"), ("dropped", "dropped")):
            s[out] = sum(w.stats[k] for w in self.webhooks)
        return s

    def alert_for(self, transition: dict) -> dict:
        """The alert event for a transition into super_spike (deterministic)."""
        sev = severity(float(transition.get("share", 0.0)), int(transition["regions"]),
                       critical_share=self.alerts.critical_share, critical_regions=self.alerts.critical_regions)
        path = self.plot_dir / f"{safe_file_stem(alert_id(transition))}.png"
        return build_alert(transition, sev, self.alerts.runbook_url, str(path))

    def handle(self, transitions: list[dict]) -> None:
        to_send, unsure, seen = {}, {}, set()
        for t in transitions:
            try:
                if not enters_super_spike(t):
                    self._stats["ignored"] += 1
                    continue
                alert = self.alert_for(t)
            except (KeyError, TypeError, ValueError) as e:
                self._stats["undecodable"] += 1
                log.error("malformed spike transition (%s): %.300r", e, t)
                continue
            if alert["id"] in seen:  # the same transition twice in one batch (a re-emission)
                self._stats["duplicates"] += 1
                continue
            seen.add(alert["id"])
            status = self.ledger.claim(alert)
            if status == CLAIMED:
                to_send[alert["id"]] = alert
            elif status == PENDING:
                unsure[alert["id"]] = alert
            elif status == DUPLICATE:
                self._stats["duplicates"] += 1
            elif status == COOLDOWN:
                self._stats["suppressed"] += 1
                log.info("alert %s suppressed: video %s alerted within the cooldown", alert["id"], alert["video_id"])
        reconciled = []
        if unsure:
            published = published_keys(self.kafka, self.out_topic, f"{self.name}-scan")
            for aid, alert in unsure.items():
                if aid in published:
                    reconciled.append(alert)
                else:
                    to_send[aid] = alert
        failures = []
        for aid, alert in to_send.items():
            self._write_plot(alert)
            self.producer.produce(self.out_topic, orjson.dumps(alert), key=aid.encode(),
                                  on_delivery=lambda err, _m: err and failures.append(err))
        if to_send and (self.producer.flush(30) or failures):
            raise KafkaDeliveryError(f"alerts not delivered: {failures[:3]}")
        if to_send or reconciled:
            self._queue_deliveries([*to_send.values(), *reconciled])
        self._stats["alerts"] += len(to_send)
        self._stats["reconciled"] += len(reconciled)
        for alert in to_send.values():
            log.info("ALERT %s %s: video %s, %d views/interval, growth %.1fx, %d regions", alert["severity"],
                        alert["id"], alert["video_id"], alert["views"], alert["growth"], alert["regions"])

    def _queue_deliveries(self, alerts: list[dict]) -> None:
        """One outbox entry per webhook and alert, and the alerts' records marked published, in one
        transaction: either the alert is marked and queued everywhere, or neither."""
        now = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=True)
        for alert in alerts:
            for w in self.webhooks:
                w.outbox.add(alert, now, pipe)
            self.ledger.mark_published(alert, pipe)
        pipe.execute()
        for w in self.webhooks:
            w.poke()

    def _write_plot(self, alert: dict) -> None:
        """Best effort: an alert without its picture is still an alert."""
        path = Path(alert["plot_path"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(alert_png(alert))
            tmp.replace(path)
        except OSError as e:
            log.warning("alert %s: plot not written (%s)", alert["id"], e)
            alert["plot_path"] = ""

    def pending_deliveries(self) -> int:
        return sum(len(w.outbox) for w in self.webhooks)

    def wait_for_deliveries(self, timeout_s: float) -> bool:
        """Waits until every outbox is empty (True) or `timeout_s` passed (False)."""
        deadline = time.monotonic() + timeout_s
        while self.pending_deliveries():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def close(self) -> None:
        """Stops the delivery threads (what they have not delivered stays in the outboxes for the
        next run), flushes the producer and leaves the topic."""
        for w in self.webhooks:
            w.stop()
        self.producer.flush(10)
        super().close()


def alerter_name(cfg: Config) -> str:
    return f"{cfg.kafka.consumer_group}-alerter"


def make_alerter(cfg: Config, client: redis.Redis | None = None, deliver: bool = True, environ=None) -> SpikeAlerter:
    """The alerter as configured: topics, Redis, cooldown, webhooks, plots under <state_dir>/alerts."""
    if client is None:
        from settings.connections import redis_client

        client = redis_client(cfg, "writer", environ)
    t = cfg.kafka.topics
    return SpikeAlerter(client_config(cfg.kafka, environ=environ), t.spike_transitions, t.spike_alerts, client, alerter_name(cfg),
                        cfg.alerts, cfg.ttl_ms("spike_alerts"), cfg.state_dir / "alerts",
                        environ=environ, deliver=deliver)
