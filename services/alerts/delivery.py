"""Webhook delivery: one background thread per configured webhook that POSTs the due entries of
its outbox (outbox.py), so a slow or failing receiver never blocks the alerter's consumer, nor the
other webhooks.

Each attempt POSTs the payload of the webhook's format (payloads.py) with the webhook's timeout.
2xx = delivered (the entry leaves the outbox). A connection error, a timeout or any other status is
a failure: the entry is rescheduled retry_initial, 2x, 4x ... later (at most retry_max). An entry
enqueued more than give_up_after ago is dropped instead of tried, and logged as an error.

Delivery is at least once: a crash between the receiver's 2xx and the removal from the outbox sends
that alert again after the restart. Run one alerter per outbox (the previous one closed first).

Secrets: a header value `$NAME` is read from the environment variable NAME, and `${NAME}` inside
the URL likewise (a Slack incoming-webhook URL is itself a secret). They are resolved once, at
start; a missing variable fails the start naming the variable. Logs name the webhook, never its
URL or headers.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
import zlib

from services.retry import REDIS_UNAVAILABLE
from services.alerts.outbox import Outbox, retry_delay_ms
from services.alerts.payloads import payload_body
from settings.families import WebhookConfig

log = logging.getLogger("fyp.alerts.delivery")

_URL_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
IDLE_POLL_S = 1.0  # the outbox is re-read at least this often (another process may have added to it)


class MissingSecret(ValueError):
    pass


def resolve_secrets(webhook: WebhookConfig, environ=None) -> tuple[str, dict]:
    """The webhook's URL and headers with `${NAME}` / `$NAME` taken from the environment."""
    env = os.environ if environ is None else environ

    def lookup(var: str, where: str) -> str:
        if var not in env:
            raise MissingSecret(f"webhook {webhook.name!r}: {where} needs environment variable {var}, which is not set")
        return env[var]

    url = _URL_VAR.sub(lambda m: lookup(m.group(1), "url"), webhook.url)
    headers = {}
    for k, v in (webhook.headers or {}).items():
        v = str(v)
        headers[str(k)] = lookup(v[1:], f"header {k}") if v.startswith("$") else v
    return url, headers


def webhook_name(webhook: WebhookConfig) -> str:
    """The webhook's name, which also names its outbox; without one, a stable name derived from the
    URL (not the URL itself, which may hold a token)."""
    return webhook.name or f"webhook-{zlib.crc32(webhook.url.encode()):08x}"


class WebhookDelivery:
    def __init__(self, webhook: WebhookConfig, client, retry_initial_ms: int, retry_max_ms: int,
                 give_up_after_ms: int, environ=None, clock=time.time):
        self.webhook, self.name = webhook, webhook_name(webhook)
        self.url, self.headers = resolve_secrets(webhook, environ)
        self.outbox = Outbox(client, self.name)
        self.retry_initial_ms, self.retry_max_ms, self.give_up_after_ms = retry_initial_ms, retry_max_ms, give_up_after_ms
        self.clock = clock
        self.stats = {"delivered": 0, "retries": 0, "dropped": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"webhook-{self.name}", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """New entries were added: look at the outbox now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=self.webhook.timeout / 1000 + 5)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                wait = self.deliver_due()
                backoff = 0.05
            except REDIS_UNAVAILABLE as e:
                log.warning("webhook %s: redis unavailable (%s); retrying in %.2fs", self.name, e, backoff)
                wait, backoff = backoff, min(backoff * 2, 5.0)
            except Exception:
                log.exception("webhook %s: delivery round failed", self.name)
                wait = IDLE_POLL_S
            self._wake.wait(IDLE_POLL_S if wait is None else min(max(wait, 0.01), IDLE_POLL_S))
            self._wake.clear()

    def deliver_due(self) -> float | None:
        """One round: attempts every due entry once. Returns seconds until the next entry is due
        (None when the outbox is empty)."""
        next_due = None
        for alert_id, entry in sorted(self.outbox.entries().items(), key=lambda kv: kv[1]["due_ms"]):
            if self._stop.is_set():
                return None
            now = self._now_ms()
            if entry["due_ms"] > now:
                next_due = entry["due_ms"] if next_due is None else min(next_due, entry["due_ms"])
                continue
            if now - entry["enqueued_ms"] > self.give_up_after_ms:
                self.outbox.remove(alert_id)
                self._count("dropped")
                log.error("webhook %s: gave up on alert %s after %d failed attempts (last error: %s)",
                          self.name, alert_id, entry["failures"], entry.get("last_error", ""))
                continue
            error = self.post(entry["alert"])
            if error is None:
                self.outbox.remove(alert_id)
                self._count("delivered")
                log.info("webhook %s: delivered alert %s", self.name, alert_id)
                continue
            entry["failures"] += 1
            delay = retry_delay_ms(entry["failures"], self.retry_initial_ms, self.retry_max_ms)
            entry["due_ms"], entry["last_error"] = self._now_ms() + delay, error
            self.outbox.reschedule(alert_id, entry)
            self._count("retries")
            log.warning("webhook %s: alert %s not delivered (%s); attempt %d again in %.1fs",
                        self.name, alert_id, error, entry["failures"] + 1, delay / 1000)
            next_due = entry["due_ms"] if next_due is None else min(next_due, entry["due_ms"])
        return None if next_due is None else (next_due - self._now_ms()) / 1000

    def post(self, alert: dict) -> str | None:
        """POSTs the alert. Returns None on a 2xx, else a short reason (no URL, no headers)."""
        req = urllib.request.Request(self.url, data=payload_body(self.webhook.format, alert), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "fyp-alerts",
                                              **self.headers})
        try:
            with urllib.request.urlopen(req, timeout=self.webhook.timeout / 1000) as resp:
                resp.read(65536)
                status = resp.status
        except urllib.error.HTTPError as e:
            return f"HTTP {e.code}"
        except urllib.error.URLError as e:
            return f"connection failed: {type(e.reason).__name__}" + (
                f" {e.reason.strerror}" if getattr(e.reason, "strerror", None) else "")
        except TimeoutError:
            return f"timed out after {self.webhook.timeout} ms"
        except Exception as e:  # a reset connection, a malformed response, ...
            return f"{type(e).__name__}"
        return None if 200 <= status < 300 else f"HTTP {status}"

    def _count(self, stat: str) -> None:
        with self._lock:
            self.stats[stat] += 1
