"""The local stack as one unit: `up` installs what is missing and starts broker and Redis,
creates the topics; `down` stops what `up` started. Tests use the same code on free ports."""
from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from fyp.config import Config
from fyp.stack import artifacts, services


def stack_services(cfg: Config, tansu: Path | None = None) -> list[services.Service]:
    state = cfg.state_dir
    tansu = tansu or cfg.artifacts_dir / "bin" / "tansu"
    data = state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return [services.tansu_service(tansu, cfg.stack.broker_port), services.redis_service(cfg.stack.redis_port, data)]


def up(cfg: Config) -> None:
    arts = artifacts.ensure_all(cfg.artifacts_dir)
    for svc in stack_services(cfg, arts["tansu"]):
        services.start(svc, cfg.state_dir)
    ensure_topics(cfg)


def down(cfg: Config) -> list[str]:
    return [svc.name for svc in stack_services(cfg) if services.stop(svc, cfg.state_dir)]


def status(cfg: Config) -> list[str]:
    return [services.status(svc, cfg.state_dir) for svc in stack_services(cfg)]


def all_topics(cfg: Config) -> list[str]:
    t = cfg.kafka.topics
    return [t.engagement, t.uploads, t.notifications, t.dead_letter, t.late, t.feature_updates,
            t.milestone_crossings, t.spike_transitions, t.spike_alerts]


def ensure_topics(cfg: Config, partitions: int | None = None, timeout: float = 20.0) -> None:
    admin = AdminClient({"bootstrap.servers": cfg.kafka.bootstrap})
    n = partitions or cfg.kafka.partitions
    deadline = time.monotonic() + timeout
    while True:
        existing = set(admin.list_topics(timeout=5).topics)
        missing = [t for t in all_topics(cfg) if t not in existing]
        if not missing:
            return
        futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1) for t in missing])
        for topic, fut in futures.items():
            try:
                fut.result()
            except Exception as e:  # already exists (a race) is fine; anything else retried below
                if "exist" not in str(e).lower() and time.monotonic() > deadline:
                    raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not created: {missing}")
        time.sleep(0.2)
