"""The `fyp` command line."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import orjson

from fyp.acl_cli import add_commands as add_acl_commands
from fyp.alerts_cli import add_commands as add_alert_commands
from fyp.cluster_cli import add_commands as add_cluster_commands
from fyp.offline_cli import add_commands as add_offline_commands
from settings.config import ConfigError, load_config
from settings.kafka_clients import client_config


def _cfg(args):
    try:
        return load_config(args.config)
    except ConfigError as e:
        raise SystemExit(f"config error: {e}") from None


def cmd_setup(args):
    from stack import artifacts

    paths = artifacts.ensure_all(_cfg(args).artifacts_dir)
    print(f"tansu: {paths['tansu']}")
    for j in paths["jars"]:
        print(f"jar: {j}")


def cmd_up(args):
    from stack import local

    cfg = _cfg(args)
    local.up(cfg)
    print("\n".join(local.status(cfg)))


def cmd_down(args):
    from stack import local

    stopped = local.down(_cfg(args))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def cmd_status(args):
    from stack import local

    print("\n".join(local.status(_cfg(args))))


def cmd_generate(args):
    from fyp.generator import output
    from fyp.generator.traffic import TrafficSpec, generate

    cfg = _cfg(args)
    duration = int(args.minutes * 60_000)
    start = args.start if args.start is not None else int(time.time() * 1000) - duration
    spec = TrafficSpec(seed=args.seed, start_ms=start, duration_ms=duration, mean_rate=args.rate,
                       videos=args.videos, users=args.users, ooo_share=args.ooo_share,
                       max_ooo_ms=cfg.engagement.max_out_of_orderness, late_share=args.late_share,
                       straggler_share=args.straggler_share,
                       straggler_ms=(cfg.engagement.max_out_of_orderness + 2 * cfg.engagement.emit_interval,
                                     max(cfg.engagement.allowed_lateness // 2, cfg.engagement.max_out_of_orderness + 3 * cfg.engagement.emit_interval)),
                       late_ms=(cfg.engagement.allowed_lateness + 300_000, cfg.engagement.allowed_lateness + 900_000),
                       malformed_share=args.malformed_share, spikes=args.spikes)
    traffic = generate(spec)
    if args.labels:
        with open(args.labels, "wb") as f:
            for s in traffic.spikes:
                f.write(orjson.dumps(s) + b"\n")
    if args.to == "file":
        if not args.output:
            raise SystemExit("--output is required with --to file")
        n = output.write_jsonl(args.output, traffic.payloads)
        if args.uploads_output:
            output.write_jsonl(args.uploads_output, [orjson.dumps(u) for u in traffic.uploads])
    else:
        output.send(client_config(cfg.kafka), cfg.kafka.topics.uploads, [orjson.dumps(u) for u in traffic.uploads])
        n = output.send(client_config(cfg.kafka), cfg.kafka.topics.engagement, traffic.payloads,
                        target_rate=args.target_rate)
    kinds = {k: traffic.kinds.count(k) for k in sorted(set(traffic.kinds))}
    print(orjson.dumps({"events": n, "uploads": len(traffic.uploads), "spikes": len(traffic.spikes),
                        "start_ms": start, "end_ms": start + duration, "kinds": kinds}).decode())


def cmd_run(args):
    from fyp.runner import run_streaming

    run_streaming(_cfg(args), args.job, fresh=args.fresh, with_writer=not args.no_writer)


def cmd_backfill(args):
    from fyp.runner import run_backfill

    run_backfill(_cfg(args), args.job, args.input, uploads_path=args.uploads)


def cmd_demo(args):
    from fyp.demo import run_demo

    run_demo(_cfg(args), args.config, live_seconds=args.live_seconds)


def cmd_writer(args):
    import threading

    from fyp.runner import make_writer, start_metrics

    cfg = _cfg(args)
    w = make_writer(cfg)
    start_metrics(cfg, "writer", [w], None, None)
    stop = threading.Event()
    try:
        w.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        w.close()


def cmd_features_get(args):
    from featurestore.layout import SchemaMismatch
    from featurestore.reader import FeatureReader
    from settings.connections import redis_client
    from operators.feature_groups import groups_for

    cfg = _cfg(args)
    reader = FeatureReader(redis_client(cfg, "reader"), groups_for(cfg))
    features = args.features.split(",") if args.features else None
    try:
        rows = reader.get(args.entity, args.ids, features)
    except KeyError as e:
        raise SystemExit(str(e.args[0])) from None
    except SchemaMismatch as e:
        raise SystemExit(f"stored values were written under another definition of the group: {e} "
                         "(is this the jobs' config?)") from None
    for row in rows:
        sys.stdout.write(orjson.dumps(row.to_json()).decode() + "\n")


def cmd_serve(args):
    from services.serve import serve

    cfg = _cfg(args)  # validated here, so a bad config fails before any worker starts
    http = cfg.serving.http
    serve(args.config, args.host or http.host, args.port or http.port, args.workers or http.workers,
          "info" if args.verbose else "warning")


JOB_NAMES = ("features", "engagement", "interests", "trends", "milestones", "spikes")


def cmd_trends(args):
    from featurestore.reader import FeatureReader
    from settings.connections import redis_client
    from operators.feature_groups import groups_for

    cfg = _cfg(args)
    row = FeatureReader(redis_client(cfg, "reader"), groups_for(cfg)).get("region", [args.region.upper()])[0]
    if not row.found:
        raise SystemExit(f"no trends for region {args.region!r} yet")
    for name, ranked in row.values.items():
        if not name.startswith("top_"):
            continue
        print(f"{args.region.upper()} {name} as of {row.as_of['region_trends']}:")
        for rank, e in enumerate(ranked, 1):
            print(f"  {rank:>3}. {e['video']:<24} score {e['score']:>10.1f}  views {e['views']:>7}  "
                  f"velocity {e['velocity']:>+10.1f}/h")


def cmd_anomaly_score(args):
    import csv

    from anomaly.detector import score_series

    with open(args.input, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"timestamp", "value"} <= set(rows[0]):
        raise SystemExit(f"{args.input}: expected a CSV with columns timestamp,value")
    scores = score_series(float(r["value"]) for r in rows)
    with open(args.output, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value", "anomaly_score"])
        for r, s in zip(rows, scores):
            w.writerow([r["timestamp"], r["value"], repr(s)])
    print(f"scored {len(rows)} rows -> {args.output}")


def cmd_anomaly_eval(args):
    from anomaly import nab
    from anomaly.detector import score_series

    result = nab.evaluate(args.nab, lambda values, _timestamps: score_series(values))
    for profile, r in result.items():
        print(f"{profile:<20} {r['score']:7.2f}   (threshold {r['threshold']:.6f}, raw {r['raw']:.3f})")


def valid_uploads(lines):
    from schemas.upload import UPLOAD_V1

    for line in lines:
        if line.strip():
            try:
                yield UPLOAD_V1.validate(line.rstrip(b"\n"))
            except Exception:
                continue  # the job sends it to the dead-letter topic and does not use it


def cmd_spikes_backtest(args):
    from operators.spikes import SpikeRules
    from operators.spikes_backtest import UploadTimes, backtest

    cfg = _cfg(args)
    for path in (args.input, args.uploads):
        if path is not None and not Path(path).exists():
            raise SystemExit(f"input not found: {path}")
    uploads = UploadTimes()
    if args.uploads:
        with open(args.uploads, "rb") as f:
            uploads = UploadTimes(valid_uploads(f))
    e = cfg.engagement
    with open(args.input, "rb") as f:
        result = backtest(f, SpikeRules.from_config(cfg.spikes), e.max_out_of_orderness, e.allowed_lateness, uploads)
    out = open(args.output, "wb") if args.output else sys.stdout.buffer
    try:
        for t in sorted(result.transitions, key=lambda t: (t["at"], t["video_id"])):
            out.write(orjson.dumps(t) + b"\n")
    finally:
        if args.output:
            out.close()
    print(orjson.dumps(result.summary()).decode(), file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fyp", description="fyp-features: real-time features for a For You feed")
    p.add_argument("--config", help="YAML config (default configs/local.yaml)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("setup", help="fetch the broker and connector jars, build the UDF jar").set_defaults(fn=cmd_setup)
    sub.add_parser("up", help="start the local broker and Redis, create topics").set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop what `up` started").set_defaults(fn=cmd_down)
    sub.add_parser("status", help="show the local stack and the Flink cluster's jobs").set_defaults(fn=cmd_status)

    g = sub.add_parser("generate", help="synthetic engagement traffic")
    g.add_argument("--to", choices=("kafka", "file"), default="kafka")
    g.add_argument("--output", help="JSON-lines file (with --to file)")
    g.add_argument("--uploads-output", help="upload events file (with --to file)")
    g.add_argument("--labels", help="write injected spike labels here (JSON lines)")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--minutes", type=float, default=10, help="event-time span")
    g.add_argument("--start", type=int, help="first event time, ms (default: now - span)")
    g.add_argument("--rate", type=float, default=100, help="mean events per second of event time")
    g.add_argument("--target-rate", type=float, default=0, help="events per second of wall time (0: max)")
    g.add_argument("--videos", type=int, default=2000)
    g.add_argument("--users", type=int, default=20000)
    g.add_argument("--ooo-share", type=float, default=0.05)
    g.add_argument("--straggler-share", type=float, default=0.0)
    g.add_argument("--late-share", type=float, default=0.0)
    g.add_argument("--malformed-share", type=float, default=0.0)
    g.add_argument("--spikes", type=int, default=0)
    g.set_defaults(fn=cmd_generate)

    r = sub.add_parser("run", help="run a streaming job (embedded Flink) with its feature writer")
    r.add_argument("job", choices=JOB_NAMES)
    r.add_argument("--fresh", action="store_true", help="ignore retained checkpoints")
    r.add_argument("--no-writer", action="store_true", help="do not run the feature writer in-process")
    r.set_defaults(fn=cmd_run)

    b = sub.add_parser("backfill", help="run a job over a JSON-lines file to its end")
    b.add_argument("job", choices=JOB_NAMES)
    b.add_argument("--input", required=True, help="engagement events, JSON lines")
    b.add_argument("--uploads", help="upload events, JSON lines (jobs that use video metadata)")
    b.set_defaults(fn=cmd_backfill)

    sub.add_parser("writer", help="run the feature writer service alone").set_defaults(fn=cmd_writer)

    d = sub.add_parser("demo", help="traffic -> streaming job -> Redis, then print features")
    d.add_argument("--live-seconds", type=int, default=30)
    d.set_defaults(fn=cmd_demo)

    f = sub.add_parser("features", help="read the online store")
    fsub = f.add_subparsers(dest="action", required=True)
    fg = fsub.add_parser("get", help="print one JSON object per id")
    fg.add_argument("entity", choices=("video", "user", "region"))
    fg.add_argument("ids", nargs="+")
    fg.add_argument("--features", help="comma-separated feature names (default: all)")
    fg.set_defaults(fn=cmd_features_get)

    a = sub.add_parser("anomaly", help="the spike detector offline (NAB file format)")
    asub = a.add_subparsers(dest="action", required=True)
    sc = asub.add_parser("score", help="timestamp,value CSV -> timestamp,value,anomaly_score CSV")
    sc.add_argument("--input", required=True)
    sc.add_argument("--output", required=True)
    sc.set_defaults(fn=cmd_anomaly_score)
    ev = asub.add_parser("eval", help="score every file of a NAB-layout folder; print the three profiles")
    ev.add_argument("--nab", required=True, help="folder with data/, labels/combined_windows.json")
    ev.set_defaults(fn=cmd_anomaly_eval)

    spk = sub.add_parser("spikes", help="the spike rules offline")
    spsub = spk.add_subparsers(dest="action", required=True)
    bt = spsub.add_parser("backtest", help="engagement events (JSON lines) through the spike job's per-video "
                                            "code: transitions as JSON lines, a summary on stderr")
    bt.add_argument("--input", required=True, help="engagement events, JSON lines")
    bt.add_argument("--uploads", help="upload events, JSON lines (a new upload has no past; without: unknown)")
    bt.add_argument("--output", help="transitions file (default: stdout)")
    bt.set_defaults(fn=cmd_spikes_backtest)

    add_alert_commands(sub, _cfg)
    add_cluster_commands(sub, _cfg)  # cluster up|down|status, submit, cancel, stop; jobs in `status`
    add_acl_commands(sub, _cfg)
    add_offline_commands(sub, _cfg)

    sv = sub.add_parser("serve", help="the HTTP feature server for ranking services (JSON)")
    sv.add_argument("--host", help="default serving.http.host")
    sv.add_argument("--port", type=int, help="default serving.http.port")
    sv.add_argument("--workers", type=int, help="server processes (default serving.http.workers)")
    sv.set_defaults(fn=cmd_serve)

    t = sub.add_parser("trends", help="print a region's trending videos (GLOBAL for all regions)")
    t.add_argument("region")
    t.set_defaults(fn=cmd_trends)
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from jobs.source_partitions import SourcePartitionsError
    from settings.connections import RedisAccessError
    from settings.kafka_clients import KafkaAccessError

    try:
        args.fn(args)
    except (RedisAccessError, KafkaAccessError, SourcePartitionsError) as e:
        raise SystemExit(f"fyp: {e}") from None  # one line naming what to fix, never a secret


if __name__ == "__main__":
    main()
