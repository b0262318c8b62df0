"""`fyp offline ...` commands: point-in-time reads of the offline feature log. fyp/cli.py hooks
them in with `add_commands(subparsers, load_cfg)`.

    fyp offline get --entity video --ids a,b,c --as-of TIME [--mode served|event] [--features f1,f2]
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone

import orjson

from settings.config import Config


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds from `1718000000000` or ISO-8601 (`2024-06-10T06:13:20Z`; no zone = UTC)."""
    s = text.strip()
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"--as-of: expected epoch milliseconds or an ISO-8601 time "
                         f"(e.g. 2024-06-10T06:13:20Z), got {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1000)


def cmd_offline_get(cfg: Config, args) -> None:
    import pandas as pd

    from featurestore.offline_log import MANIFEST
    from featurestore.offline_store import OfflineStore, rows_as_json

    try:
        as_of = parse_time_ms(args.as_of)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    store = OfflineStore.from_config(cfg)
    if not (store.root / MANIFEST).exists():
        raise SystemExit(f"no offline log at {store.root} (is offline.enabled on, and has a writer committed "
                         "to it? the first commit comes offline.flush_interval after the first update)")
    ids = [i for i in args.ids.split(",") if i]
    if not ids:
        raise SystemExit("--ids: give at least one id")
    features = [f for f in args.features.split(",") if f] if args.features else None
    try:
        df = store.get_historical(pd.DataFrame({"id": ids, "ts": [as_of] * len(ids)}), features=features,
                                  entity=args.entity, mode=args.mode)
    except KeyError as e:
        raise SystemExit(str(e.args[0])) from None
    groups = [c[:-len("__as_of")] for c in df.columns if c.endswith("__as_of")]
    names = [c for c in df.columns if c not in ("id", "ts") and not c.endswith("__as_of")]
    for row in rows_as_json(df, groups, names):
        sys.stdout.write(orjson.dumps(row).decode() + "\n")


def add_commands(subparsers, load_cfg) -> None:
    """Adds `offline get` to the `fyp` parser's subparsers. `load_cfg(args)` turns the parsed
    arguments (with `--config`) into a Config."""
    o = subparsers.add_parser("offline", help="the offline feature log (Parquet): point-in-time reads")
    osub = o.add_subparsers(dest="action", required=True)
    g = osub.add_parser("get", help="features as they were at a time, one JSON object per id")
    g.add_argument("--entity", required=True, help="video, user or region")
    g.add_argument("--ids", required=True, help="comma-separated entity ids")
    g.add_argument("--as-of", required=True, help="epoch ms or ISO-8601 (no zone: UTC)")
    g.add_argument("--mode", choices=("served", "event"), default="served",
                   help="served: what the online store returned at that wall time (default); "
                        "event: the newest values with as-of event time at or before it")
    g.add_argument("--features", help="comma-separated feature names (default: all of the entity's)")
    g.set_defaults(fn=lambda args: cmd_offline_get(load_cfg(args), args))
