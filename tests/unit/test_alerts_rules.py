"""Severity, the webhook retry schedule, secrets from the environment, and one delivery thread's
rounds against an in-memory outbox with a fake clock (retries, success, give up)."""
from __future__ import annotations

import pytest

from services.alerts.delivery import MissingSecret, WebhookDelivery, resolve_secrets
from services.alerts.outbox import retry_delay_ms
from services.alerts.severity import CRITICAL, WARNING, severity
from settings.families import WebhookConfig


def test_severity_rule():
    kw = dict(critical_share=0.01, critical_regions=3)
    assert severity(0.01, 1, **kw) == CRITICAL  # large: a hundredth of the platform's views
    assert severity(0.002, 3, **kw) == CRITICAL  # broad
    assert severity(0.0099, 2, **kw) == WARNING  # neither


def test_retry_schedule_doubles_up_to_the_max():
    assert [retry_delay_ms(n, 1000, 60_000) for n in range(1, 9)] == [1000, 2000, 4000, 8000, 16000, 32000,
                                                                     60000, 60000]
    assert retry_delay_ms(10_000, 1000, 60_000) == 60_000  # no overflow
    assert retry_delay_ms(0, 1000, 60_000) == 0


def test_secrets_come_from_the_environment():
    hook = WebhookConfig(name="oncall", url="https://hooks.example/${HOOK_PATH}", format="slack",
                         headers={"Authorization": "$ONCALL_TOKEN", "X-Team": "feed"})
    url, headers = resolve_secrets(hook, {"HOOK_PATH": "T1/B2/xyz", "ONCALL_TOKEN": "Bearer s3cret"})
    assert url == "https://hooks.example/T1/B2/xyz"
    assert headers == {"Authorization": "Bearer s3cret", "X-Team": "feed"}
    with pytest.raises(MissingSecret, match="ONCALL_TOKEN") as e:
        resolve_secrets(hook, {"HOOK_PATH": "p"})
    assert "s3cret" not in str(e.value)


class FakeRedis:
    """The hash commands the outbox uses."""

    def __init__(self):
        self.h: dict[str, dict[bytes, bytes]] = {}

    def hsetnx(self, key, field, value):
        self.h.setdefault(key, {}).setdefault(field.encode(), value)

    def hset(self, key, field, value):
        self.h.setdefault(key, {})[field.encode()] = value

    def hdel(self, key, field):
        self.h.get(key, {}).pop(field.encode(), None)

    def hgetall(self, key):
        return dict(self.h.get(key, {}))

    def hlen(self, key):
        return len(self.h.get(key, {}))


def test_delivery_rounds_retry_with_backoff_then_deliver_or_give_up():
    now = [1_000.0]
    d = WebhookDelivery(WebhookConfig(name="w", url="http://127.0.0.1:9/"), FakeRedis(), retry_initial_ms=1000,
                        retry_max_ms=4000, give_up_after_ms=20_000, clock=lambda: now[0])
    answers = iter(["HTTP 500", "connection failed", "HTTP 503", "HTTP 500", None])
    d.post = lambda alert: next(answers)
    d.outbox.add({"id": "v:1"}, int(now[0] * 1000))
    attempts_at = []
    for _ in range(200):  # 100 ms ticks
        if d.outbox.entries().get("v:1", {}).get("due_ms", 1e18) <= now[0] * 1000:
            attempts_at.append(round(now[0] - 1_000.0, 1))
        d.deliver_due()
        now[0] += 0.1
        if not len(d.outbox):
            break
    assert attempts_at == [0.0, 1.0, 3.0, 7.0, 11.0]  # waits 1, 2, 4, 4 (max) s
    assert d.stats == {"delivered": 1, "retries": 4, "dropped": 0}

    d.post = lambda alert: "HTTP 500"
    d.outbox.add({"id": "v:2"}, int(now[0] * 1000))
    for _ in range(300):
        d.deliver_due()
        now[0] += 0.1
    assert not len(d.outbox) and d.stats["dropped"] == 1


def test_the_delivery_thread_survives_redis_outages_and_stops_promptly():
    import threading
    import time

    import redis

    class FlakyRedis(FakeRedis):
        outages = 3

        def hgetall(self, key):
            if self.outages:
                self.outages -= 1
                raise redis.ConnectionError("down")
            return super().hgetall(key)

    posted = threading.Event()
    d = WebhookDelivery(WebhookConfig(name="w", url="http://127.0.0.1:9/"), FlakyRedis(), 1000, 4000, 60_000)
    d.post = lambda alert: posted.set()  # returns None: delivered
    d.outbox.add({"id": "v:1"}, int(time.time() * 1000))
    d.start()
    d.poke()
    try:
        assert posted.wait(5)
    finally:
        t = time.monotonic()
        d.stop()
        assert time.monotonic() - t < 2
    assert d.stats["delivered"] == 1 and not len(d.outbox)
