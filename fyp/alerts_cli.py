"""`fyp alerts ...` commands. fyp/cli.py hooks them in with `add_commands(subparsers)`; each handler
takes a loaded Config and the parsed arguments.

    fyp alerts tail [--from-beginning] [--json] [--count N]   follow spike-alerts
    fyp alerts silence VIDEO [VIDEO ...] --for 24h             no alerts for these videos for a while
    fyp alerts run                                             the alerter service alone
"""
from __future__ import annotations

import signal
import sys
import threading

import orjson

from settings.config import Config, ConfigError, load_config


def cmd_alerts_tail(cfg: Config, args) -> None:
    from services.alerts.tail import alert_line, follow_alerts
    from settings.kafka_clients import client_config

    stop = threading.Event()  # never set here: Ctrl-C or --count ends the command
    alerts = follow_alerts(client_config(cfg.kafka), cfg.kafka.topics.spike_alerts, args.from_beginning, stop)
    shown = 0
    try:
        for raw in alerts:
            if args.json:
                line = raw.decode(errors="replace")
            else:
                try:
                    line = alert_line(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    line = f"(undecodable alert) {raw[:200]!r}"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            shown += 1
            if args.count and shown >= args.count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        alerts.close()  # leaves the topic


def cmd_alerts_silence(cfg: Config, args) -> None:
    import time

    from services.alerts.ledger import AlertLedger
    from services.alerts.payloads import rfc3339
    from schemas.durations import parse_duration_ms

    try:
        duration = 0 if args.duration.strip() == "0" else parse_duration_ms(args.duration, "--for")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    from settings.connections import redis_client

    client = redis_client(cfg, "writer")
    ledger = AlertLedger(client, cfg.alerts.cooldown, cfg.ttl_ms("spike_alerts"))
    now = int(time.time() * 1000)
    for video in args.videos:
        ledger.silence(video, now + duration, now)
    print(f"silenced {len(args.videos)} video(s) until {rfc3339(now + duration)} (event time)")


def cmd_alerts_run(cfg: Config, args) -> None:
    from services.alerts.alerter import make_alerter

    alerter = make_alerter(cfg)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        alerter.run(stop)
    finally:
        alerter.close()


def _load(args) -> Config:
    try:
        return load_config(args.config)
    except ConfigError as e:
        raise SystemExit(f"config error: {e}") from None


def add_commands(subparsers, load_cfg=_load) -> None:
    """Adds `alerts tail`, `alerts silence` and `alerts run` to the `fyp` parser's subparsers.
    `load_cfg(args)` turns the parsed arguments (with `--config`) into a Config; the default is
    fyp/cli.py's behaviour (load_config, a config error exits with its message)."""
    a = subparsers.add_parser("alerts", help="super-spike alerts for on-call")
    asub = a.add_subparsers(dest="action", required=True)
    t = asub.add_parser("tail", help="print alerts from the spike-alerts topic as they come")
    t.add_argument("--from-beginning", action="store_true", help="replay every alert on the topic first")
    t.add_argument("--json", action="store_true", help="print each alert event as raw JSON")
    t.add_argument("--count", type=int, default=0, help="exit after this many alerts (0: follow until Ctrl-C)")
    t.set_defaults(fn=lambda args: cmd_alerts_tail(load_cfg(args), args))
    s = asub.add_parser("silence", help="no alerts for these videos for a while (--for 0 lifts a silence)")
    s.add_argument("videos", nargs="+")
    s.add_argument("--for", dest="duration", required=True, help="how long, e.g. 24h, 30m; 0 to lift")
    s.set_defaults(fn=lambda args: cmd_alerts_silence(load_cfg(args), args))
    r = asub.add_parser("run", help="run the spike alerter alone (transitions -> alerts and webhooks)")
    r.set_defaults(fn=lambda args: cmd_alerts_run(load_cfg(args), args))
