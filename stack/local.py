"""The local stack as one unit: `up` installs what is missing and starts broker and Redis (and,
with stack.broker_storage: s3, SeaweedFS as the broker's storage, first), creates the topics; `down`
stops what `up` started. Tests use the same code on free ports."""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from settings.config import Config
from settings.kafka_clients import KafkaAccessError, client_config, connect_problem
from stack import artifacts, daemons
from stack.s3 import Credentials

CREDENTIALS_FILE = "fyp-s3-credentials.json"  # in the SeaweedFS data folder, mode 0600


def s3_credentials(data_dir: Path, env: dict | None = None, create: bool = True) -> Credentials | None:
    """The S3 credentials of the local SeaweedFS and the broker: AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY from the environment when both are set; otherwise a random pair generated
    once for this data folder and kept in it (readable by its owner only; never in the config,
    never printed). None when there are none yet and `create` is false."""
    env = os.environ if env is None else env
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        if not create:
            return None
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"access_key": "fyp" + secrets.token_hex(8), "secret_key": secrets.token_urlsafe(30)}, f)
        tmp.replace(path)
    raw = json.loads(path.read_text())
    return Credentials(raw["access_key"], raw["secret_key"])


def durable_services(tansu: Path, weed: Path, broker_port: int, s3_port: int, internal_from: int, data_dir: Path,
                     bucket: str, creds: Credentials | None) -> list[daemons.Service]:
    """SeaweedFS and tansu on s3://<bucket>/ in it, in start order (startable only with `creds`)."""
    if creds is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://127.0.0.1:{s3_port}"
    return [daemons.seaweedfs_service(weed, s3_port, internal_from, data_dir, creds, bucket),
            daemons.tansu_service(tansu, broker_port, f"s3://{bucket}/",
                                  daemons.s3_env(creds, endpoint) if creds else None)]


def stack_services(cfg: Config, tansu: Path | None = None, weed: Path | None = None,
                   create_credentials: bool = False) -> list[daemons.Service]:
    """The stack's services in start order (stopped in reverse)."""
    state, st = cfg.state_dir, cfg.stack
    tansu = tansu or cfg.artifacts_dir / "bin" / "tansu"
    data = state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    if st.broker_storage == "s3":
        creds = s3_credentials(cfg.seaweedfs_dir, create=create_credentials)
        broker = durable_services(tansu, weed or cfg.artifacts_dir / "bin" / "weed", st.broker_port, st.seaweedfs_port,
                                  st.seaweedfs_internal_ports, cfg.seaweedfs_dir, st.s3_bucket, creds)
    else:
        broker = [daemons.tansu_service(tansu, st.broker_port)]
    if st.broker_tls_cert:
        broker = [*broker[:-1], *tls_fronted(broker[-1], cfg)]
    return [*broker, daemons.redis_service(st.redis_port, data)]


def tls_fronted(tansu: daemons.Service, cfg: Config) -> list[daemons.Service]:
    """tansu moved to stack.broker_internal_port (loopback, plain) and advertising
    stack.broker_port, where the TLS terminator listens: every client connection, also the ones
    metadata sends clients to, goes through TLS."""
    st = cfg.stack
    argv = list(tansu.argv)
    argv[argv.index("--listener-url") + 1] = f"tcp://127.0.0.1:{st.broker_internal_port}"
    inner = dataclasses.replace(tansu, argv=argv, port=st.broker_internal_port)
    ca = Path(st.broker_tls_client_ca) if st.broker_tls_client_ca else None
    return [inner, daemons.broker_tls_service(st.broker_port, st.broker_internal_port, Path(st.broker_tls_cert),
                                               Path(st.broker_tls_key), ca)]


def up(cfg: Config) -> None:
    arts = artifacts.ensure_all(cfg.artifacts_dir)
    weed = artifacts.ensure_seaweedfs(cfg.artifacts_dir) if cfg.stack.broker_storage == "s3" else None
    for svc in stack_services(cfg, arts["tansu"], weed, create_credentials=True):
        daemons.start(svc, cfg.state_dir)
    ensure_topics(cfg)


def down(cfg: Config) -> list[str]:
    svcs = stack_services(cfg)
    if cfg.stack.broker_storage != "s3":  # also one started while the config said s3
        st = cfg.stack
        svcs.insert(0, daemons.seaweedfs_service(cfg.artifacts_dir / "bin" / "weed", st.seaweedfs_port,
                                                  st.seaweedfs_internal_ports, cfg.seaweedfs_dir))
    return [svc.name for svc in reversed(svcs) if daemons.stop(svc, cfg.state_dir)]


def status(cfg: Config) -> list[str]:
    return [daemons.status(svc, cfg.state_dir) for svc in stack_services(cfg)]


def all_topics(cfg: Config) -> list[str]:
    t = cfg.kafka.topics
    return [t.engagement, t.uploads, t.notifications, t.dead_letter, t.late, t.feature_updates,
            t.milestone_crossings, t.spike_transitions, t.spike_alerts]


def ensure_topics(cfg: Config, partitions: int | None = None, timeout: float = 20.0) -> None:
    conf = client_config(cfg.kafka)
    problem = connect_problem(conf, timeout)
    if problem:  # a refused login or TLS handshake says so here, in one line, not as a timeout below
        raise KafkaAccessError(problem)
    admin = AdminClient(conf)
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
